"""Web UI viewer: time to the first image of a 500-slice CT series and the scroll rate through
it, in headless Chromium, pacsnode's viewer side by side with the Orthanc Web Viewer plugin
(Orthanc 1.10 + orthanc-webviewer 2.8, Debian packages) on the same data.

    .venv/bin/python bench/ui.py --repeat 5 --out ui.json

Per target and repeat: the server is (re)started (Orthanc with an emptied Web Viewer cache), a
fresh browser context opens the series in the viewer, and the page records every draw of the
viewer (pacsnode: the canvas' ``data-rendered`` attribute that ``viewer.js`` sets after each
paint; Orthanc: Cornerstone's ``CornerstoneImageRendered`` event) with ``performance.now()``:

* **first image ms**: navigation start to the first draw (the canvas is then checked to be
  non-blank);
* **scroll, loading**: right after the first image, one wheel step at a time from the first
  slice to the last, each step sent as soon as the previous step's slice is drawn;
  frames/s = slice changes drawn / time from the first step to the last draw;
* **scroll, cached**: the same back to the first slice, every frame now in the browser.

The wheel steps are dispatched inside the page (pacsnode: a ``wheel`` event on the canvas;
Orthanc: its jQuery ``mousewheel`` handler), so no DevTools round trip sits between two
frames; a real (trusted) wheel turn is sent at the end to check that it scrolls too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pydicom

sys.path.insert(0, str(Path(__file__).parent))
from dicomweb import wait_http
from query import free_port, process

from pacsnode.synthetic import generate_corpus

BIN = Path(sys.prefix) / "bin"
WEBVIEWER_PLUGIN = "/usr/share/orthanc/plugins/libOrthancWebViewer.so"

# Installed in every page before its scripts run: a draw recorder and a scroll driver.
RECORDER = r"""
(() => {
  const B = window.__bench = { draws: 0, distinct: 0, last: null, lastChange: null,
                               first: null, waiters: [], kind: null };
  performance.setResourceTimingBufferSize(100000);
  B.record = (key) => {
    const t = performance.now();
    key = String(key);
    B.draws++;
    if (B.first === null) B.first = t;
    if (key !== B.last) { B.distinct++; B.last = key; B.lastChange = t; }
    const waiting = B.waiters;
    B.waiters = [];
    for (const w of waiting) if (!w()) B.waiters.push(w);
  };
  B.waitDistinct = (n, timeout) => new Promise((resolve, reject) => {
    if (B.distinct >= n) { resolve(B.lastChange); return; }
    const timer = setTimeout(() => reject(new Error(`no draw ${n} within ${timeout} ms`)), timeout);
    B.waiters.push(() => {
      if (B.distinct < n) return false;
      clearTimeout(timer);
      resolve(B.lastChange);
      return true;
    });
  });
  document.addEventListener("DOMContentLoaded", () => {
    if (window.jQuery && window.cornerstone) {  // the Orthanc Web Viewer
      B.kind = "orthanc";
      window.jQuery(document).on("CornerstoneImageRendered", (e, d) => B.record(d.image.imageId));
    } else {  // pacsnode: viewer.js sets canvas.dataset.rendered after every paint
      B.kind = "pacsnode";
      new MutationObserver((records) => {
        for (const r of records) B.record(r.target.dataset.rendered);
      }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-rendered"] });
    }
  });
  B.canvas = () =>
    document.querySelector(B.kind === "orthanc" ? "#dicomImage canvas" : "canvas.image");
  B.ready = () => {
    if (B.first === null) return false;
    if (B.kind === "orthanc") {
      const ev = window.jQuery._data(document.getElementById("dicomImage"), "events");
      return Boolean(ev && ev.mousewheel);
    }
    const v = window.pacsnodeViewer;
    return Boolean(v && v.viewports[0] && v.viewports[0].slices);
  };
  B.step = (dir) => {
    if (B.kind === "orthanc") {
      const noop = () => {};
      const original = { type: "mousewheel", wheelDelta: dir > 0 ? -120 : 120, detail: 0,
                         preventDefault: noop, stopPropagation: noop,
                         stopImmediatePropagation: noop };
      window.jQuery("#dicomImage").trigger(window.jQuery.Event(original));
    } else {
      B.canvas().dispatchEvent(new WheelEvent("wheel", { deltaY: 100 * dir, deltaMode: 0,
                                                        bubbles: true, cancelable: true }));
    }
  };
  B.resources = () => {
    const entries = performance.getEntriesByType("resource");
    return { count: entries.length,
             bytes: entries.reduce((a, e) => a + (e.transferSize || e.encodedBodySize || 0), 0) };
  };
  B.scroll = async (steps, dir, timeout) => {
    const r0 = B.resources();
    const draws0 = B.draws;
    const start = performance.now();
    const times = [];
    for (let i = 0; i < steps; i++) {
      const target = B.distinct + 1;
      B.step(dir);
      times.push(await B.waitDistinct(target, timeout));
    }
    const r1 = B.resources();
    return { start, times, draws: B.draws - draws0, requests: r1.count - r0.count,
             bytes: r1.bytes - r0.bytes };
  };
  // grey-level standard deviation of the visible canvas (0 = blank)
  B.stddev = () => {
    const c = B.canvas();
    if (!c || !c.width || !c.height) return 0;
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0, s = 0, s2 = 0;
    for (let i = 0; i < d.length; i += 16) {
      const g = (d[i] + d[i + 1] + d[i + 2]) / 3;
      n++; s += g; s2 += g * g;
    }
    return Math.sqrt(Math.max(0, s2 / n - (s / n) ** 2));
  };
})();
"""

# Orthanc's viewer.js declares `var compression = 'jpeg95'`; an accessor defined first keeps
# the value chosen here (its "H" quality button would select 'deflate', lossless).
FORCE_COMPRESSION = """
Object.defineProperty(window, "compression", { configurable: true, get: () => %s, set: () => {} });
"""


# --------------------------------------------------------------------------- corpus and servers
def make_corpus(work: Path, slices: int, size: int, seed: int) -> list[Path]:
    directory = work / f"corpus-ct{slices}-{size}-seed{seed}"
    manifest = directory / "manifest.json"
    if manifest.exists():
        return [directory / p for p in json.loads(manifest.read_text())]
    shutil.rmtree(directory, ignore_errors=True)
    print(f"generating {slices} CT slices {size}x{size} in {directory} ...", flush=True)
    paths = generate_corpus(directory, patients=1, studies_per_patient=1, series_per_study=1,
                            instances_per_series=slices, rows=size, columns=size, seed=seed,
                            modality_cycle=("CT",))
    manifest.write_text(json.dumps([str(p.relative_to(directory)) for p in paths]))
    return paths


@contextmanager
def pacsnode_server(data: Path, log: Path) -> Iterator[str]:
    http = free_port()
    with process([str(BIN / "pacsnode"), "serve", "--data-dir", str(data), "--dicom-host",
                  "127.0.0.1", "--dicom-port", str(free_port()), "--http-host", "127.0.0.1",
                  "--http-port", str(http), "--log-level", "warning"], log):
        url = f"http://127.0.0.1:{http}"
        wait_http(f"{url}/docs")
        yield url


@contextmanager
def orthanc_server(root: Path, exe: str) -> Iterator[str]:
    """Orthanc with the Web Viewer plugin on a free loopback port; its Web Viewer cache is
    emptied before every start (the storage and index in ``root/db`` are kept)."""
    (root / "db").mkdir(parents=True, exist_ok=True)
    shutil.rmtree(root / "webviewer-cache", ignore_errors=True)
    http = free_port()
    (root / "orthanc.json").write_text(json.dumps({
        "Name": "UIBENCH", "StorageDirectory": str(root / "db"),
        "IndexDirectory": str(root / "db"), "HttpPort": http, "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "DicomServerEnabled": False,
        "Plugins": [WEBVIEWER_PLUGIN], "DefaultEncoding": "Utf8",
        "WebViewer": {"CachePath": str(root / "webviewer-cache"), "CacheSize": 2000}},
        indent=1))
    with process([exe, str(root / "orthanc.json")], root / "orthanc.log"):
        url = f"http://127.0.0.1:{http}"
        wait_http(f"{url}/system")
        yield url


def orthanc_upload(url: str, paths: list[Path]) -> str:
    """POST every file to /instances; the Orthanc ID of the (single) series."""
    with httpx.Client(timeout=120) as client:
        for path in paths:
            r = client.post(f"{url}/instances", content=path.read_bytes(),
                            headers={"Content-Type": "application/dicom"})
            r.raise_for_status()
        series = client.get(f"{url}/series").json()
        if len(series) != 1:
            raise RuntimeError(f"Orthanc holds {len(series)} series, 1 expected")
        count = len(client.get(f"{url}/series/{series[0]}").json()["Instances"])
        if count != len(paths):
            raise RuntimeError(f"Orthanc holds {count} instances, {len(paths)} expected")
        return str(series[0])


# --------------------------------------------------------------------------- one measurement
def fps_of(result: dict[str, Any]) -> dict[str, float]:
    times = result["times"]
    elapsed = (times[-1] - result["start"]) / 1000
    gaps = [b - a for a, b in zip([result["start"], *times[:-1]], times, strict=True)]
    return {"fps": len(times) / elapsed, "seconds": elapsed,
            "median_frame_ms": statistics.median(gaps), "max_frame_ms": max(gaps)}


def measure(browser: Any, url: str, slices: int, args: argparse.Namespace,
            compression: str | None = None) -> dict[str, Any]:
    w, h = (int(v) for v in args.viewport.split("x"))
    context = browser.new_context(viewport={"width": w, "height": h})
    context.add_init_script(RECORDER)
    if compression:
        context.add_init_script(FORCE_COMPRESSION % json.dumps(compression))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_dialog(dialog: Any) -> None:  # Orthanc's viewer alert()s on a failed image
        errors.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    timeout = args.step_timeout * 1000
    out: dict[str, Any] = {}
    try:
        page.goto(url, wait_until="commit")
        page.wait_for_function("window.__bench && window.__bench.ready()", timeout=timeout,
                               polling=20)
        out["first_image_ms"] = page.evaluate("window.__bench.first")
        out["first_image_stddev"] = page.evaluate("window.__bench.stddev()")
        if out["first_image_stddev"] < 2:
            raise RuntimeError(f"the first image looks blank: {out}")
        out["first_image_requests"] = page.evaluate("window.__bench.resources()")
        for name, direction in (("scroll_loading", 1), ("scroll_cached", -1)):
            result = page.evaluate("([n, d, t]) => window.__bench.scroll(n, d, t)",
                                   [slices - 1, direction, timeout])
            out[name] = {**fps_of(result), "draws": result["draws"],
                         "slice_changes": len(result["times"]),
                         "requests": result["requests"], "bytes": result["bytes"]}
        out["last_image_stddev"] = page.evaluate("window.__bench.stddev()")
        # a real wheel turn over the image must scroll as well
        box = page.evaluate("(() => { const r = window.__bench.canvas().getBoundingClientRect();"
                            " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        before = page.evaluate("window.__bench.distinct")
        page.mouse.move(box[0], box[1])
        page.mouse.wheel(0, 100)
        page.evaluate("(n) => window.__bench.waitDistinct(n, 10000)", before + 1)
        out["trusted_wheel_ok"] = True
    except Exception as exc:  # one failed run is reported, the others go on
        out["failed"] = f"{type(exc).__name__}: {exc}"
    finally:
        out["errors"] = errors
        context.close()
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if "scroll_cached" in r]
    def spread(values: list[float]) -> dict[str, float]:
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}
    if not ok:
        return {"runs_ok": 0}
    return {
        "runs_ok": len(ok),
        "first_image_ms": spread([r["first_image_ms"] for r in ok]),
        "scroll_loading_fps": spread([r["scroll_loading"]["fps"] for r in ok]),
        "scroll_cached_fps": spread([r["scroll_cached"]["fps"] for r in ok]),
        "scroll_loading_s": spread([r["scroll_loading"]["seconds"] for r in ok]),
        "cached_pass_requests": spread([r["scroll_cached"]["requests"] for r in ok]),
    }


# --------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slices", type=int, default=500)
    ap.add_argument("--size", type=int, default=512, help="rows = columns")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--targets", default="pacsnode,orthanc,orthanc-deflate",
                    help="pacsnode; orthanc (its default quality, JPEG 95 of 8-bit data); "
                         "orthanc-deflate (its lossless 'H' quality)")
    ap.add_argument("--viewport", default="1280x800")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--orthanc-bin", default=shutil.which("Orthanc") or "/usr/sbin/Orthanc")
    ap.add_argument("--step-timeout", type=float, default=60, help="seconds per draw")
    ap.add_argument("--workdir", type=Path,
                    default=Path(tempfile.gettempdir()) / "pacsnode-uibench")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    targets = args.targets.split(",")
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    paths = make_corpus(work, args.slices, args.size, args.seed)
    first = pydicom.dcmread(paths[0], stop_before_pixels=True)
    study, series = str(first.StudyInstanceUID), str(first.SeriesInstanceUID)
    runs_dir = work / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    runs_dir.mkdir()
    all_runs: dict[str, list[dict[str, Any]]] = {}
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.node(),
        "cpus": len(os.sched_getaffinity(0)),
        "chromium": subprocess.run([args.chromium, "--version"], capture_output=True,
                                   text=True).stdout.strip(),
        "slices": args.slices, "size": args.size, "seed": args.seed, "viewport": args.viewport,
        "runs": all_runs, "summary": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            if "pacsnode" in targets:
                data = runs_dir / "pacsnode-data"
                t0 = time.perf_counter()
                subprocess.run([str(BIN / "pacsnode"), "import", "--data-dir", str(data),
                                "--log-level", "warning", str(paths[0].parent)], check=True)
                print(f"pacsnode import: {time.perf_counter() - t0:.1f} s", flush=True)
                runs = all_runs["pacsnode"] = []
                for i in range(args.repeat):
                    with pacsnode_server(data, runs_dir / "pacsnode.log") as url:
                        runs.append(measure(browser, f"{url}/#/viewer/{study}/{series}?slice=0",
                                            args.slices, args))
                    print_run("pacsnode", i, runs[-1])
            orthancs = [t for t in targets if t.startswith("orthanc")]
            if orthancs:
                root = runs_dir / "orthanc"
                with orthanc_server(root, args.orthanc_bin) as url:
                    t0 = time.perf_counter()
                    oseries = orthanc_upload(url, paths)
                    print(f"Orthanc upload: {time.perf_counter() - t0:.1f} s", flush=True)
                for target in orthancs:
                    compression = {"orthanc": None, "orthanc-deflate": "deflate"}[target]
                    runs = all_runs[target] = []
                    for i in range(args.repeat):
                        with orthanc_server(root, args.orthanc_bin) as url:
                            runs.append(measure(
                                browser, f"{url}/web-viewer/app/viewer.html?series={oseries}",
                                args.slices, args, compression))
                        print_run(target, i, runs[-1])
        finally:
            browser.close()
    print()
    print(f"{'target':<16} {'runs':>4}  {'first image ms':>22}  {'scroll fps, loading':>22}"
          f"  {'scroll fps, cached':>22}")
    for target, runs in all_runs.items():
        s = report["summary"][target] = summarise(runs)
        if not s["runs_ok"]:
            print(f"{target:<16} {0:>4}  (no run completed)")
            continue
        def cell(d: dict[str, float]) -> str:
            return f"{d['median']:.0f} ({d['min']:.0f}-{d['max']:.0f})"
        print(f"{target:<16} {s['runs_ok']:>4}  {cell(s['first_image_ms']):>22}  "
              f"{cell(s['scroll_loading_fps']):>22}  {cell(s['scroll_cached_fps']):>22}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0 if all(s.get("runs_ok") == args.repeat for s in report["summary"].values()) else 1


def print_run(target: str, i: int, r: dict[str, Any]) -> None:
    if "scroll_cached" not in r:
        print(f"  {target} run {i + 1}: failed {r}", flush=True)
        return
    lo, ca = r["scroll_loading"], r["scroll_cached"]
    print(f"  {target:<16} run {i + 1}: first image {r['first_image_ms']:7.0f} ms; scroll "
          f"loading {lo['fps']:6.1f} fps ({lo['seconds']:.1f} s, {lo['requests']} requests), "
          f"cached {ca['fps']:6.1f} fps ({ca['requests']} requests)"
          f"{'; errors: ' + str(r['errors']) if r['errors'] else ''}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
