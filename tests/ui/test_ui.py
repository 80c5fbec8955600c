"""The web UI end to end: ``pacsnode serve`` (SQLite) with a small corpus, driven by Debian's
Chromium (headless, through the ``playwright`` package; ``make test-deps`` installs
``/usr/bin/chromium``) as a person would: search the study list, open a study and its
thumbnails, scroll and window a series in the viewer (the canvas pixels must change),
MONOCHROME1, colour and multi-frame images, the tag browser, upload a file, delete a series,
add a peer and send a study to it (DCMTK storescp receives it), add a worklist item, and
the status page. Screenshots of the main screens go to the test's temporary directory and
must not be blank; with ``PACSNODE_UI_SCREENSHOTS=DIR`` the study list and the viewer are
also written there (the README's pictures: ``docs/screenshots``).

Any uncaught JavaScript error on a page fails the test that caused it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from PIL import Image, ImageStat
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from pacsnode.synthetic import generate_corpus, generate_ct_series
from tests.conftest import IN_CI, PacsnodeServer, free_port
from tests.storescp import StorescpReceiver

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the "
                               "test extra)")
Page = sync_api.Page
expect = sync_api.expect

CHROMIUM = Path(os.environ.get("PACSNODE_CHROMIUM", "/usr/bin/chromium"))
CT_SLICES = 20
TIMEOUT_MS = 15_000


# --------------------------------------------------------------------------- the corpus
def _mono1_copy(src: Path, dst: Path) -> Dataset:
    """A CT slice turned MONOCHROME1 (same stored pixels) in a study of its own, with a
    private block and a sequence for the tag browser."""
    ds = pydicom.dcmread(src)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PatientName, ds.PatientID = "MONO^ONE", "MONO1"
    ds.StudyDescription = "MONOCHROME1 TEST"
    ds.AccessionNumber = "ACCMONO1"
    block = ds.private_block(0x0011, "PACSNODE UI TEST", create=True)
    block.add_new(0x01, "LO", "private value")
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "CTHEAD", "99PN", "CT head"
    ds.ProcedureCodeSequence = [code]
    ds.save_as(dst, enforce_file_format=True)
    return ds


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ui-corpus")
    generate_corpus(root / "corpus", patients=3, studies_per_patient=1, series_per_study=2,
                    instances_per_series=3, seed=11)
    ct = generate_ct_series(root / "ct", CT_SLICES, rows=128, columns=128, seed=5)
    extra = root / "extra"
    extra.mkdir()
    mono1 = _mono1_copy(ct[CT_SLICES // 2], extra / "mono1.dcm")
    for name in ("SC_rgb.dcm", "emri_small.dcm"):
        shutil.copy(get_testdata_file(name), extra / name)
    upload = pydicom.dcmread(generate_corpus(root / "upload-src", patients=1,
                                             studies_per_patient=1, series_per_study=1,
                                             instances_per_series=1, seed=99)[0])
    upload.PatientName, upload.PatientID = "UPLOAD^TEST", "UPLOAD1"
    upload.StudyInstanceUID, upload.SeriesInstanceUID = generate_uid(), generate_uid()
    upload.SOPInstanceUID = upload.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    upload_path = root / "upload.dcm"
    upload.save_as(upload_path, enforce_file_format=True)
    ct_ds = pydicom.dcmread(ct[0], stop_before_pixels=True)
    return {"dirs": [root / "corpus", root / "ct", extra], "ct_study": str(ct_ds.StudyInstanceUID),
            "ct_series": str(ct_ds.SeriesInstanceUID),
            "ct_middle": str(pydicom.dcmread(ct[CT_SLICES // 2]).SOPInstanceUID),
            "mono1": mono1, "upload": upload_path, "upload_study": str(upload.StudyInstanceUID)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, corpus: dict[str, Any]
           ) -> Iterator[PacsnodeServer]:
    base = tmp_path_factory.mktemp("ui-server")
    srv = PacsnodeServer(data_dir=base / "data", db=None, port=free_port())
    srv.cli("import", *(str(d) for d in corpus["dirs"]))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (make test-deps installs Debian's chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                              args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-screenshots")


@pytest.fixture
def page(browser: Any, server: PacsnodeServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 760},
                                  base_url=server.url)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


# --------------------------------------------------------------------------- helpers
def screenshot(page: Page, shots: Path, name: str, *, readme: bool = False) -> Path:
    """A screenshot that must not be blank (its grey levels vary)."""
    path = shots / f"{name}.png"
    page.screenshot(path=str(path))
    with Image.open(path) as im:
        stddev = ImageStat.Stat(im.convert("L")).stddev[0]
    assert stddev > 8, f"{name}.png looks blank (grey level standard deviation {stddev:.1f})"
    target = os.environ.get("PACSNODE_UI_SCREENSHOTS")
    if readme and target:
        Path(target).mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:  # palette PNG: small enough for a README
            im.convert("RGB").quantize(colors=128).save(Path(target) / f"{name}.png",
                                                        optimize=True)
    return path


def study_rows(page: Page) -> list[dict[str, str]]:
    """The study list's rows as {column header: text}."""
    page.wait_for_selector("table.studies tbody tr")
    headers = [re.sub(r"[\s↕▲▼]+$", "", h) for h in
               page.locator("table.studies thead th").all_inner_texts()]
    rows = []
    for row in page.locator("table.studies tbody tr[data-study]").all():
        rows.append(dict(zip(headers, row.locator("td").all_inner_texts(), strict=False)))
    return rows


def search(page: Page, **fields: str) -> list[dict[str, str]]:
    """Fill the search form, submit it, and wait for the list to settle."""
    for name, value in fields.items():
        if name == "modality":
            page.select_option("form.search select[name=modality]", value)
        else:
            page.fill(f"form.search input[name={name}]", value)
    page.click("form.search button[type=submit]")
    page.wait_for_selector("table.studies[data-state=ready]")
    return study_rows(page)


def open_study(page: Page, text: str) -> None:
    """From the study list, the study whose row has ``text``."""
    page.goto("/")
    page.locator(f"table.studies tbody tr:has-text('{text}') td:nth-child(5) a").click()
    page.wait_for_selector(".series-card")


def open_viewer(page: Page, path: str) -> None:
    page.goto("about:blank")  # no canvas of the previous viewer left to wait for
    page.goto(path)
    page.wait_for_selector(".viewport canvas.image[data-rendered]")


def slice_label(page: Page) -> str:
    return page.locator(".viewport .slice-number").first.inner_text()


CANVAS_STATS = """(c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sq = 0, hash = 0;
  for (let i = 0; i < d.length; i += 4) {
    sum += d[i]; sq += d[i] * d[i];
    hash = (hash * 31 + d[i] + d[i + 1] * 7 + d[i + 2] * 13) >>> 0;
  }
  const n = d.length / 4;
  return {mean: sum / n, std: Math.sqrt(sq / n - (sum / n) ** 2), hash};
}"""


def canvas_stats(page: Page) -> dict[str, float]:
    stats: dict[str, float] = page.locator(".viewport canvas.image").first.evaluate(
        CANVAS_STATS)
    return stats


def image_pixels(page: Page) -> list[int]:
    """The red channel of the active viewport's image as rendered (before zoom)."""
    pixels: list[int] = page.evaluate("""() => {
      const off = window.pacsnodeViewer.active.off;
      return Array.from(off.getContext('2d').getImageData(0, 0, off.width, off.height).data
        .filter((_, i) => i % 4 === 0));
    }""")
    return pixels


# --------------------------------------------------------------------------- the tests
def test_study_list_search_sort(page: Page, shots: Path) -> None:
    page.goto("/")
    rows = study_rows(page)
    assert len(rows) == 7, rows  # 3 corpus + CT + MONOCHROME1 + RGB + multi-frame MR
    assert {"Patient name", "Patient ID", "Birth date", "Study date", "Description",
            "Modalities", "Accession", "Series", "Instances"} <= set(rows[0])
    ct = next(r for r in rows if r["Instances"] == str(CT_SLICES))
    assert ct["Patient name"] == "DOE, JOHN" and ct["Series"] == "1"
    screenshot(page, shots, "study-list", readme=True)

    doe = search(page, name="doe")  # no wildcard: a prefix, case-insensitive
    assert len(doe) == 2 and all(r["Patient name"] == "DOE, JOHN" for r in doe)
    assert "name=doe" in page.url
    wildcard = search(page, name="m?ller*")
    assert [r["Patient name"] for r in wildcard] == ["Müller, Jürgen"]
    mr = search(page, name="", modality="MR")
    assert len(mr) == 2 and all("MR" in r["Modalities"] for r in mr)
    by_accession = search(page, modality="", accession="ACCMONO1")
    assert [r["Patient ID"] for r in by_accession] == ["MONO1"]
    none = search(page, accession="NOSUCH")
    assert not none
    expect(page.locator("td.empty")).to_contain_text("No study matches")

    page.click("form.search button:has-text('Clear')")
    page.wait_for_selector("table.studies[data-state=ready]")
    assert len(study_rows(page)) == 7
    page.click("table.studies th:has-text('Instances')")  # sort ascending, then descending
    page.click("table.studies th:has-text('Instances')")
    counts = [int(r["Instances"]) for r in study_rows(page)]
    assert counts == sorted(counts, reverse=True) and counts[0] == CT_SLICES


def test_study_list_sorted_by_the_server_across_pages(page: Page) -> None:
    """Pages of 3 sorted by patient name: each page is one /api/studies request with the
    sort, limit and offset; the total is counted once; the pages join into one order."""
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/studies?" in r.url else None)
    page.goto("/#/studies?sort=patient_name&dir=desc&size=3")
    page.wait_for_selector("table.studies[data-state=ready]")
    names: list[str] = []
    for number in range(3):
        if number:
            page.click("button[aria-label='Next page']")
            expect(page.locator(".pager")).to_contain_text(f"{3 * number + 1}–")
            page.wait_for_selector("table.studies[data-state=ready]")
        names += [r["Patient name"] for r in study_rows(page)]
    expect(page.locator(".pager")).to_contain_text("7–7 of 7")
    assert page.locator("button[aria-label='Next page']").is_disabled()
    assert len(names) == 7
    assert [n.upper() for n in names] == sorted((n.upper() for n in names), reverse=True)
    assert "page=2" in page.url and "sort=patient_name" in page.url
    assert all("sort=-PatientName" in u and "limit=3" in u for u in requests), requests
    assert [u for u in requests if "count=true" in u] == requests[:1]
    assert [re.search(r"offset=(\d+)", u).group(1) for u in requests] == ["0", "3", "6"]


def test_study_series_thumbnails_and_tags(page: Page, shots: Path, corpus: dict[str, Any]
                                          ) -> None:
    open_study(page, "Müller")
    cards = page.locator(".series-card")
    assert cards.count() == 2
    # thumbnails are images the server rendered (not broken)
    page.wait_for_function("""() => [...document.querySelectorAll('.series-card img')]
        .every(i => i.complete && i.naturalWidth > 0)""")
    screenshot(page, shots, "study")

    # series → instances → tag browser
    cards.first.locator("a:has-text('Instances')").click()
    page.wait_for_selector("table.list tbody tr")
    assert page.locator("table.list tbody tr").count() == 3

    mono1 = corpus["mono1"]
    page.goto(f"/#/tags/{mono1.StudyInstanceUID}/{mono1.SeriesInstanceUID}/"
              f"{mono1.SOPInstanceUID}")
    name_row = page.locator("tr[data-tag='00100010']")
    expect(name_row).to_contain_text("Patient's Name")
    expect(name_row).to_contain_text("MONO^ONE")
    private = page.locator("tr.private:has-text('private value')")
    expect(private).to_be_visible()
    expect(private).to_contain_text("PACSNODE UI TEST")
    sequence = page.locator("tr.sequence[data-tag='00081032']")
    expect(sequence).to_contain_text("Procedure Code Sequence")
    meaning = page.locator("tr[data-tag='00080104']")  # Code Meaning, in the item
    expect(meaning).to_be_hidden()
    sequence.locator("button.toggle").click()
    expect(meaning).to_be_visible()
    screenshot(page, shots, "tags")
    page.fill("input[type=search]", "Rows")
    expect(page.locator("tr[data-tag='00280010']")).to_be_visible()
    expect(name_row).to_be_hidden()


def test_viewer_scroll_window_zoom(page: Page, shots: Path, corpus: dict[str, Any]) -> None:
    page.goto(f"/#/study/{corpus['ct_study']}")
    page.click("a:has-text('Open viewer')")
    page.wait_for_selector(".viewport canvas.image[data-rendered]")
    assert slice_label(page) == f"Im {CT_SLICES // 2 + 1}/{CT_SLICES}"  # opens in the middle
    expect(page.locator(".viewport .ov.tl")).to_contain_text("DOE, JOHN")
    expect(page.locator(".viewport .ov.br")).to_contain_text("W 400 L 40")
    before = canvas_stats(page)
    assert before["std"] > 5, "the canvas shows no image"
    screenshot(page, shots, "viewer", readme=True)

    canvas = page.locator(".viewport canvas.image").first
    box = canvas.bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # scroll: wheel, keys, slider
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, 120)
    expect(page.locator(".slice-number").first).to_have_text(
        f"Im {CT_SLICES // 2 + 2}/{CT_SLICES}")
    page.keyboard.press("ArrowDown")
    expect(page.locator(".slice-number").first).to_have_text(
        f"Im {CT_SLICES // 2 + 3}/{CT_SLICES}")
    page.keyboard.press("Home")
    expect(page.locator(".slice-number").first).to_have_text(f"Im 1/{CT_SLICES}")
    page.wait_for_selector(".viewport canvas.image[data-rendered='0']")
    page.keyboard.press("End")
    expect(page.locator(".slice-number").first).to_have_text(f"Im {CT_SLICES}/{CT_SLICES}")
    page.locator(".slice-slider").first.fill("4")
    expect(page.locator(".slice-number").first).to_have_text(f"Im 5/{CT_SLICES}")
    page.wait_for_selector(".viewport canvas.image[data-rendered='4']")
    assert re.search(r"Loc -?\d", page.locator(".ov.bl").first.inner_text())

    # window/level by dragging: the overlay and the pixels change
    shown = canvas_stats(page)
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 120, cy + 60, steps=6)
    page.mouse.up()
    wl = page.locator(".ov.br .wl").first.inner_text()
    assert wl != "W 400 L 40", wl
    dragged = canvas_stats(page)
    assert dragged["hash"] != shown["hash"] and abs(dragged["mean"] - shown["mean"]) > 1
    # presets
    page.select_option(".viewer-toolbar select.preset", "lung")
    expect(page.locator(".ov.br .wl").first).to_have_text("W 1500 L -600")
    lung = canvas_stats(page)
    page.select_option(".viewer-toolbar select.preset", "bone")
    expect(page.locator(".ov.br .wl").first).to_have_text("W 1800 L 400")
    assert canvas_stats(page)["hash"] != lung["hash"]
    # invert
    bone = canvas_stats(page)
    page.click(".viewer-toolbar button:has-text('Invert')")
    inverted = canvas_stats(page)
    assert inverted["hash"] != bone["hash"]
    assert inverted["mean"] > bone["mean"] + 20  # dark soft tissue under a bone window
    # zoom: 1:1 (128 px image in a larger viewport) shows less of the image than fit
    page.click(".viewer-toolbar button:has-text('1:1')")
    expect(page.locator(".ov.br").first).to_contain_text("Zoom 100%")
    page.click(".viewer-toolbar button:has-text('Fit')")
    expect(page.locator(".ov.br").first).not_to_contain_text("Zoom 100%")
    page.keyboard.press("r")
    expect(page.locator(".ov.br .wl").first).to_have_text("W 400 L 40")


def test_viewer_monochrome1_colour_multiframe(page: Page, server: PacsnodeServer,
                                              corpus: dict[str, Any]) -> None:
    study, series, middle = corpus["ct_study"], corpus["ct_series"], corpus["ct_middle"]
    open_viewer(page, f"/#/viewer/{study}/{series}?instance={middle}")
    mono2 = image_pixels(page)
    mono1 = corpus["mono1"]
    open_viewer(page, f"/#/viewer/{mono1.StudyInstanceUID}/{mono1.SeriesInstanceUID}")
    inverted = image_pixels(page)
    assert len(mono2) == len(inverted) == 128 * 128
    # same stored pixels, same window: MONOCHROME1 is the MONOCHROME2 picture inverted
    assert max(abs(a + b - 255) for a, b in zip(mono2, inverted, strict=True)) <= 1
    assert len(set(mono2)) > 10

    # colour: the RGB test image's stripes keep their colours
    rgb = httpx.get(f"{server.url}/api/studies",
                    params={"ModalitiesInStudy": "OT"}).json()["items"][0]
    detail = httpx.get(f"{server.url}/api/studies/{rgb['study_uid']}").json()
    open_viewer(page, f"/#/viewer/{rgb['study_uid']}/{detail['series'][0]['series_uid']}")
    top_left: list[int] = page.evaluate("""() => {
      const off = window.pacsnodeViewer.active.off;
      return Array.from(off.getContext('2d').getImageData(50, 5, 1, 1).data); }""")
    assert top_left[0] > 200 and top_left[1] < 60 and top_left[2] < 60, top_left  # red

    # multi-frame: frames are slices, and cine plays them
    mr = httpx.get(f"{server.url}/api/studies",
                   params={"StudyDate": "20000101"}).json()["items"][0]
    detail = httpx.get(f"{server.url}/api/studies/{mr['study_uid']}").json()
    open_viewer(page, f"/#/viewer/{mr['study_uid']}/{detail['series'][0]['series_uid']}")
    assert slice_label(page) == "Im 1/10"
    expect(page.locator(".ov.bl").first).to_contain_text("frame 1/10")
    page.click(".viewer-toolbar button.play")
    expect(page.locator(".slice-number").first).not_to_have_text("Im 1/10")
    page.click(".viewer-toolbar button.play")
    expect(page.locator(".viewer-toolbar button.play")).to_contain_text("Play")


def test_compare_two_series(page: Page, shots: Path) -> None:
    open_study(page, "Müller")
    page.click("a:has-text('Open viewer')")
    page.wait_for_selector(".viewport canvas.image[data-rendered]")
    page.select_option(".viewer-toolbar select.compare", index=2)
    page.wait_for_selector(".viewports.two .viewport:nth-child(2) canvas.image[data-rendered]")
    assert page.locator(".viewport").count() == 2
    assert "compare=" in page.url
    screenshot(page, shots, "viewer-compare")


def test_upload(page: Page, shots: Path, corpus: dict[str, Any]) -> None:
    page.goto("/#/upload")
    page.set_input_files("input[name=files]", str(corpus["upload"]))
    expect(page.locator(".upload-progress")).to_contain_text("Done: 1 of 1 files stored")
    screenshot(page, shots, "upload")
    page.click(f".study-links a:has-text('{corpus['upload_study']}')")
    expect(page.locator(".page-head h1")).to_be_visible()
    expect(page.locator("dl.fields")).to_contain_text("UPLOAD, TEST")
    page.goto("/")
    rows = search(page, name="upload")
    assert [r["Patient ID"] for r in rows] == ["UPLOAD1"]


def test_delete_series(page: Page, server: PacsnodeServer) -> None:
    open_study(page, "CT HEAD")
    assert page.locator(".series-card").count() == 2
    victim = page.locator(".series-card").nth(1)
    uid = victim.get_attribute("data-series")
    victim.locator("button:has-text('Delete')").click()
    dialog = page.locator(".modal")
    expect(dialog).to_contain_text("Delete series")
    dialog.locator("button:has-text('Cancel')").click()
    assert page.locator(".series-card").count() == 2  # cancelled: nothing deleted
    victim.locator("button:has-text('Delete')").click()
    page.locator(".modal button.danger:has-text('Delete')").click()
    expect(page.locator(f".series-card[data-series='{uid}']")).to_have_count(0)
    page.reload()
    page.wait_for_selector(".series-card")
    assert page.locator(".series-card").count() == 1
    assert httpx.get(f"{server.url}/api/series/{uid}").status_code == 404


@pytest.mark.dcmtk
def test_peers_and_send(page: Page, shots: Path, server: PacsnodeServer,
                        corpus: dict[str, Any], tmp_path: Path) -> None:
    receiver = StorescpReceiver(tmp_path / "received", "UIPEER", "+xa")
    try:
        page.goto("/#/peers")
        form = page.locator("form.inline-form")
        form.locator("input[name=name]").fill("uipeer")
        form.locator("input[name=aet]").fill("UIPEER")
        form.locator("input[name=host]").fill("127.0.0.1")
        form.locator("input[name=port]").fill(str(receiver.port))
        form.locator("button[type=submit]").click()
        row = page.locator("tr[data-peer='uipeer']")
        expect(row).to_contain_text("UIPEER")
        row.locator("button:has-text('Echo')").click()
        expect(row.locator(".echo-result")).to_contain_text("✓")
        screenshot(page, shots, "peers")

        page.goto(f"/#/study/{corpus['ct_study']}")
        page.click("button:has-text('Send…')")
        page.select_option(".send-dialog select[name=peer]", "uipeer")
        page.click(".send-dialog button:has-text('Send')")
        expect(page.locator(".send-dialog .job")).to_have_attribute(
            "data-state", "completed", timeout=30_000)
        expect(page.locator(".send-dialog .job")).to_contain_text(f"{CT_SLICES}/{CT_SLICES}")
        page.keyboard.press("Escape")
        assert len(receiver.files()) == CT_SLICES

        page.goto("/#/status")
        expect(page.locator("table.jobs tbody tr").first).to_contain_text("uipeer")
        expect(page.locator("table.jobs .job").first).to_have_attribute("data-state",
                                                                        "completed")
        expect(page.locator(".cards")).to_contain_text("studies")
        screenshot(page, shots, "status")

        # a peer added here can be removed here
        page.goto("/#/peers")
        page.locator("tr[data-peer='uipeer'] button:has-text('Remove')").click()
        page.locator(".modal button:has-text('Remove')").click()
        expect(page.locator("tr[data-peer='uipeer']")).to_have_count(0)
    finally:
        receiver.stop()


def test_worklist(page: Page, shots: Path) -> None:
    page.goto("/#/worklist")
    form = page.locator("form.grid-form")
    form.locator("input[name=patient_name]").fill("WORK^LIST")
    form.locator("input[name=patient_id]").fill("WL1")
    form.locator("input[name=modality]").fill("CT")
    form.locator("input[name=station_aet]").fill("CT01")
    form.locator("input[name=start]").fill("2026-11-26T14:30")
    form.locator("input[name=accession]").fill("AWL1")
    form.locator("input[name=procedure]").fill("CT HEAD")
    form.locator("button[type=submit]").click()
    row = page.locator("tr:has-text('WL1')")
    expect(row).to_contain_text("WORK, LIST")
    expect(row).to_contain_text("SCHEDULED")
    expect(row).to_contain_text("2026-11-26 14:30")
    screenshot(page, shots, "worklist")
    row.locator("button:has-text('Cancel')").click()
    expect(row).to_have_count(0)  # cancelled items leave the default list
    page.select_option("select[aria-label=State]", "all")
    expect(page.locator("tr:has-text('WL1')")).to_contain_text("CANCELLED")


def test_ui_paths_leave_the_api_alone(server: PacsnodeServer) -> None:
    """The UI at / and /ui/…; DICOMweb, the REST API, the API docs and WADO-URI keep
    their paths."""
    with httpx.Client(base_url=server.url) as client:
        index = client.get("/")
        assert index.status_code == 200 and '<script type="module"' in index.text
        assert client.get("/ui/js/viewer.js").headers["content-type"].startswith(
            "text/javascript")
        assert client.get("/ui/css/ui.css").status_code == 200
        assert client.get("/ui/dictionary.json").json()["00100010"] == "Patient's Name"
        assert client.get("/ui/nothing.js").status_code == 404
        assert client.get("/docs").status_code == 200
        assert "/api/studies" in client.get("/openapi.json").json()["paths"]
        assert client.get("/api/stats").json()["studies"] >= 1
        assert client.get("/dicom-web/studies").status_code == 200
        assert client.get("/wado", params={"requestType": "WADO"}).status_code == 400
