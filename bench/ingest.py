#!/usr/bin/env python3
"""C-STORE ingest benchmark: pacsnode versus Orthanc versus DCMTK storescp.

Run by hand, not in CI (see ``bench/README.md``)::

    python bench/ingest.py --ct 1000 --tiny 5000 --targets pacsnode,orthanc,storescp \\
        --assocs 1,4 --workdir /tmp/pacsnode-bench --out results.json

For every corpus x target x association count it starts a fresh server (fresh data directory,
free loopback ports), sends the corpus with DCMTK ``storescu`` (``TCP_NODELAY=1``, one
``storescu`` process per association, each file proposed only in its stored transfer syntax),
times the send, checks that every ``storescu`` exited 0 and that the server holds every
instance, samples the RSS of the server's process tree every 50 ms, and stops the server.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
from pydicom.filereader import read_file_meta_info

LOOPBACK = "127.0.0.1"
SCU_AET = "BENCHSCU"
PROFILE = "Bench"
MANIFEST_VERSION = 1
STORESCU_TIMEOUTS = ("-to", "10", "-ta", "30", "-ts", "120", "-td", "120")
MB = 1_000_000
MIB = 1024 * 1024
TINY_LAYOUT = {"studies_per_patient": 2, "series_per_study": 2, "instances_per_series": 10}
REPO_ROOT = Path(__file__).resolve().parents[1]


class BenchError(RuntimeError):
    """A run could not be completed (server did not start, send timed out, ...)."""


# --------------------------------------------------------------------------- environment


def dcmtk_env() -> dict[str, str]:
    """Environment for every DCMTK process and Orthanc: Nagle off (see the peers notes)."""
    return {**os.environ, "TCP_NODELAY": "1"}


def load_synthetic() -> ModuleType:
    """Import ``pacsnode.synthetic``; fall back to loading the source file directly.

    The fallback keeps the benchmark usable when the installed ``pacsnode`` package is
    missing or its ``__init__`` cannot be imported (the generator has no package imports).
    """
    try:
        import pacsnode.synthetic as synthetic
    except Exception:  # any import failure: use the file instead
        path = REPO_ROOT / "src" / "pacsnode" / "synthetic.py"
        spec = importlib.util.spec_from_file_location("pacsnode_synthetic", path)
        if spec is None or spec.loader is None:
            raise BenchError(f"cannot load the corpus generator from {path}") from None
        synthetic = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = synthetic
        spec.loader.exec_module(synthetic)
    return synthetic


def _version_text(exe: str) -> str:
    """Return the ``--version`` output of ``exe`` ("" if it cannot be run)."""
    try:
        proc = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout + proc.stderr


def find_dcmtk(tool: str, extra_dir: Path | None) -> str:
    """Find the DCMTK ``tool``, skipping same-named programs such as pynetdicom's in a venv."""
    dirs = [str(extra_dir)] if extra_dir else []
    dirs += [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin", "/usr/local/bin"]
    for directory in dirs:
        candidate = Path(directory) / tool
        if os.access(candidate, os.X_OK) and "dcmtk" in _version_text(str(candidate)).lower():
            return str(candidate)
    raise BenchError(f"DCMTK {tool} not found (pynetdicom's same-named apps are not DCMTK)")


def find_orthanc(explicit: str | None) -> str | None:
    """Return the Orthanc executable, or None if it is not installed."""
    if explicit:
        return explicit
    found = shutil.which("Orthanc")
    if found:
        return found
    return "/usr/sbin/Orthanc" if os.access("/usr/sbin/Orthanc", os.X_OK) else None


def find_pacsnode() -> str | None:
    """Return the ``pacsnode`` command: ``sys.prefix/bin/pacsnode`` first, then PATH."""
    local = Path(sys.prefix) / "bin" / "pacsnode"
    if os.access(local, os.X_OK):
        return str(local)
    return shutil.which("pacsnode")


def free_port() -> int:
    """Return a currently free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- corpora


@dataclass
class Corpus:
    """A cached, generated corpus and what is needed to send it."""

    name: str
    root: Path
    files: list[str]
    dataset_bytes: int
    file_bytes: int
    contexts: list[tuple[str, str]]

    @property
    def storescu_config(self) -> Path:
        """The storescu ``-xf`` configuration file of this corpus."""
        return self.root / "storescu.cfg"


def dataset_offset(path: Path) -> tuple[int, str, str]:
    """Return (offset of the data set, SOP Class UID, Transfer Syntax UID) of a Part-10 file."""
    meta = read_file_meta_info(path)
    group_length = int(meta.FileMetaInformationGroupLength)
    # 128-byte preamble + "DICM" + the 12-byte group length element + the rest of group 2.
    return (
        128 + 4 + 12 + group_length,
        str(meta.MediaStorageSOPClassUID),
        str(meta.TransferSyntaxUID),
    )


def write_storescu_config(path: Path, contexts: Sequence[tuple[str, str]]) -> None:
    """Write a storescu config whose profile proposes each SOP class in exactly one syntax."""
    syntaxes = sorted({ts for _, ts in contexts})
    lines = ["[[TransferSyntaxes]]"]
    for n, ts in enumerate(syntaxes, 1):
        lines += [f"[TS{n}]", f"TransferSyntax1 = {ts}"]
    lines += ["[[PresentationContexts]]", f"[{PROFILE}]"]
    for n, (sop_class, ts) in enumerate(contexts, 1):
        lines.append(f"PresentationContext{n} = {sop_class}\\TS{syntaxes.index(ts) + 1}")
    lines += ["[[Profiles]]", f"[{PROFILE}]", f"PresentationContexts = {PROFILE}", ""]
    path.write_text("\n".join(lines))


def _generate(kind: str, count: int, root: Path, seed: int) -> list[Path]:
    """Generate the files of a corpus of ``kind`` ("ct" or "tiny") into ``root``."""
    synthetic = load_synthetic()
    if kind == "ct":
        return list(synthetic.generate_ct_series(root, count, seed=seed))
    per_patient = (
        TINY_LAYOUT["studies_per_patient"]
        * TINY_LAYOUT["series_per_study"]
        * TINY_LAYOUT["instances_per_series"]
    )
    patients = -(-count // per_patient)
    paths = list(
        synthetic.generate_corpus(
            root, patients=patients, rows=16, columns=16, seed=seed, **TINY_LAYOUT
        )
    )
    for extra in paths[count:]:
        extra.unlink()
    return paths[:count]


def build_corpus(kind: str, count: int, workdir: Path, seed: int) -> Corpus:
    """Return the corpus ``kind`` x ``count`` for ``seed``, generating it unless cached."""
    name = f"{kind}{count}"
    root = workdir / "corpus" / f"{kind}-n{count}-seed{seed}"
    manifest = root / "manifest.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        if data.get("version") == MANIFEST_VERSION:
            cached = [(c[0], c[1]) for c in data["contexts"]]
            return Corpus(
                name, root, data["files"], data["dataset_bytes"], data["file_bytes"], cached
            )
    if root.exists():
        shutil.rmtree(root)
    print(f"generating corpus {name} (seed {seed}) in {root} ...", flush=True)
    started = time.perf_counter()
    paths = _generate(kind, count, root, seed)
    files: list[str] = []
    contexts: set[tuple[str, str]] = set()
    dataset_bytes = file_bytes = 0
    for path in paths:
        offset, sop_class, ts = dataset_offset(path)
        size = path.stat().st_size
        files.append(str(path.relative_to(root)))
        contexts.add((sop_class, ts))
        dataset_bytes += size - offset
        file_bytes += size
    corpus = Corpus(name, root, files, dataset_bytes, file_bytes, sorted(contexts))
    write_storescu_config(corpus.storescu_config, corpus.contexts)
    manifest.write_text(json.dumps({"version": MANIFEST_VERSION, **_corpus_json(corpus)}))
    print(f"  {len(files)} files in {time.perf_counter() - started:.1f} s", flush=True)
    return corpus


def _corpus_json(corpus: Corpus) -> dict[str, Any]:
    """The manifest / report fields of a corpus."""
    return {
        "files": corpus.files,
        "dataset_bytes": corpus.dataset_bytes,
        "file_bytes": corpus.file_bytes,
        "contexts": corpus.contexts,
    }


def warm_page_cache(corpus: Corpus) -> None:
    """Read every corpus file once so the first run does not pay for disk reads."""
    for rel in corpus.files:
        with open(corpus.root / rel, "rb") as fh:
            while fh.read(1 << 20):
                pass


# --------------------------------------------------------------------------- processes


class ProcessRegistry:
    """Every child process group we started, so that all of them can be stopped on exit."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def spawn(
        self,
        cmd: Sequence[str],
        *,
        log: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in its own process group, stdout and stderr going to ``log``."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                list(cmd),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
        """SIGTERM the process group of ``proc``, then SIGKILL it after ``grace`` seconds.

        Descendants that left the group (e.g. workers in their own session) are found through
        psutil beforehand and killed by pid if they outlive the group.
        """
        descendants = _descendants(proc.pid)
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
        _signal_group(proc, signal.SIGKILL)  # stragglers in the group (e.g. forked workers)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        for child in descendants:
            with contextlib.suppress(psutil.Error):
                child.kill()
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        """Stop every process still registered."""
        for proc in list(self._procs):
            self.stop(proc, grace=5.0)


def _descendants(pid: int) -> list[psutil.Process]:
    """The live descendants of ``pid`` (empty if it is gone)."""
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig`` to the process group led by ``proc`` (ignoring vanished groups)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class RssSampler:
    """Samples the summed RSS of a process and all its descendants every ``interval`` s, and
    their summed PSS (proportional set size: a page shared by N processes counts 1/N in each),
    which is the fair measure for servers made of forked processes."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.peak_pss = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sum(self, measure: Callable[[psutil.Process], int]) -> int:
        """``measure`` summed over the process and its descendants (0 if it is gone)."""
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for proc in procs:
            with contextlib.suppress(psutil.Error, AttributeError):
                total += measure(proc)
        return total

    def current(self) -> int:
        """Return the summed RSS in bytes now (0 if the process is gone)."""
        return self._sum(lambda p: p.memory_info().rss)

    def current_pss(self) -> int:
        """Return the summed PSS in bytes now (0 if unavailable)."""
        return self._sum(lambda p: p.memory_full_info().pss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            if self.samples % 4 == 0:  # PSS reads /proc/PID/smaps: sample it less often
                self.peak_pss = max(self.peak_pss, self.current_pss())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    """A running server under test."""

    proc: subprocess.Popen[bytes]
    aet: str
    dicom_port: int
    data_dir: Path
    log: Path
    count: Callable[[], int]
    count_method: str = "files"


@dataclass
class Options:
    """Command-line options the targets need."""

    storescp: str
    echoscu: str
    orthanc: str | None
    pacsnode: str | None
    pacsnode_args: list[str]
    orthanc_extra: dict[str, Any]
    start_timeout: float


def echo_ok(opts: Options, aet: str, port: int) -> bool:
    """Return True if a C-ECHO to ``aet`` at the loopback ``port`` succeeds."""
    cmd = [
        opts.echoscu,
        "-aet",
        SCU_AET,
        "-aec",
        aet,
        "-to",
        "3",
        "-ta",
        "5",
        "-td",
        "5",
        LOOPBACK,
        str(port),
    ]
    try:
        proc = subprocess.run(cmd, env=dcmtk_env(), capture_output=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def wait_ready(
    server: Server, opts: Options, reg: ProcessRegistry, extra: Callable[[], bool] | None = None
) -> None:
    """Wait until the server answers C-ECHO (and ``extra``); else stop it and raise BenchError."""
    deadline = time.monotonic() + opts.start_timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            reg.stop(server.proc)
            raise BenchError(f"server exited with {server.proc.returncode}; see {server.log}")
        if (extra is None or extra()) and echo_ok(opts, server.aet, server.dicom_port):
            return
        time.sleep(0.2)
    reg.stop(server.proc)
    raise BenchError(f"server not ready after {opts.start_timeout:.0f} s; see {server.log}")


def count_files(directory: Path, suffix: str | None = None, skip: str | None = None) -> int:
    """Count regular files under ``directory`` (optionally by suffix, skipping a subdir)."""
    total = 0
    for _dirpath, dirnames, filenames in os.walk(directory):
        if skip is not None and skip in dirnames:
            dirnames.remove(skip)
        total += sum(1 for f in filenames if suffix is None or f.endswith(suffix))
    return total


def start_storescp(run_dir: Path, opts: Options, reg: ProcessRegistry, fork: bool) -> Server:
    """Start ``storescp +xa -od DIR PORT`` (optionally with ``--fork``)."""
    data, port, log = run_dir / "data", free_port(), run_dir / "server.log"
    data.mkdir(parents=True)
    cmd = [opts.storescp, "+xa", "-aet", "STORESCP", "-od", str(data), str(port)]
    if fork:
        cmd.insert(1, "--fork")
    proc = reg.spawn(cmd, log=log, env=dcmtk_env())
    server = Server(proc, "STORESCP", port, data, log, lambda: count_files(data))
    wait_ready(server, opts, reg)
    return server


def _http_json(url: str, timeout: float = 10.0) -> Any:
    """GET ``url`` and decode the JSON answer."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # loopback only
        return json.loads(resp.read())


def _http_ok(url: str) -> bool:
    """Return True if GET ``url`` answers with 2xx."""
    try:
        _http_json(url, timeout=2.0)
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return True


def orthanc_config(data: Path, http_port: int, dicom_port: int) -> dict[str, Any]:
    """The Orthanc configuration used for the benchmark (defaults otherwise)."""
    return {
        "Name": "BENCH-ORTHANC",
        "StorageDirectory": str(data),
        "IndexDirectory": str(data),
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowStore": True,
        "DefaultEncoding": "Utf8",
        "Plugins": [],
    }


def start_orthanc(run_dir: Path, opts: Options, reg: ProcessRegistry) -> Server:
    """Start Orthanc with its own config and SQLite index in ``run_dir``."""
    if opts.orthanc is None:
        raise BenchError("Orthanc not installed")
    data, log = run_dir / "data", run_dir / "server.log"
    data.mkdir(parents=True)
    http_port, dicom_port = free_port(), free_port()
    config = run_dir / "orthanc.json"
    settings = {**orthanc_config(data, http_port, dicom_port), **opts.orthanc_extra}
    config.write_text(json.dumps(settings, indent=2))
    proc = reg.spawn([opts.orthanc, str(config)], log=log, env=dcmtk_env())
    base = f"http://{LOOPBACK}:{http_port}"

    def count() -> int:
        return int(_http_json(f"{base}/statistics")["CountInstances"])

    server = Server(proc, "ORTHANC", dicom_port, data, log, count, "GET /statistics")
    wait_ready(server, opts, reg, extra=lambda: _http_ok(f"{base}/system"))
    return server


def _pacsnode_ls_count(exe: str, data: Path) -> int | None:
    """Instances reported by ``pacsnode ls --json`` (None if unavailable or not a list)."""
    try:
        proc = subprocess.run(
            [exe, "ls", "--json", "--data-dir", str(data)],
            capture_output=True,
            timeout=120,
            check=False,
        )
        listing = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    return len(listing) if isinstance(listing, list) else None


def start_pacsnode(run_dir: Path, opts: Options, reg: ProcessRegistry, *,
                   null_store: bool = False) -> Server:
    """Start ``pacsnode serve`` on free loopback ports with a fresh data dir (with
    ``null_store``: ``bench/null_store.py serve``, whose C-STORE handler only answers)."""
    if opts.pacsnode is None:
        raise BenchError("pacsnode not installed")
    data, log = run_dir / "data", run_dir / "server.log"
    dicom_port, http_port = free_port(), free_port()
    launcher = ([sys.executable, str(Path(__file__).with_name("null_store.py"))] if null_store
                else [opts.pacsnode])
    cmd = [
        *launcher,
        "serve",
        "--data-dir",
        str(data),
        "--dicom-port",
        str(dicom_port),
        "--http-port",
        str(http_port),
        "--aet",
        "PACSNODE",
        *opts.pacsnode_args,
    ]
    proc = reg.spawn(cmd, log=log, env=dcmtk_env())
    server = Server(
        proc,
        "PACSNODE",
        dicom_port,
        data,
        log,
        (lambda: _null_count(data)) if null_store
        else (lambda: count_files(data, suffix=".dcm", skip="tmp")),
        "answered C-STOREs" if null_store else ".dcm files",
    )
    wait_ready(server, opts, reg)
    return server


def _null_count(data: Path) -> int:
    try:
        return (data / "null-store-count").stat().st_size
    except FileNotFoundError:
        return 0


# --------------------------------------------------------------------------- a run


@dataclass
class RunResult:
    """The outcome of one corpus x target x association-count run."""

    target: str
    corpus: str
    assocs: int
    instances: int
    dataset_bytes: int
    status: str = "ok"
    seconds: float | None = None
    inst_per_s: float | None = None
    mb_per_s: float | None = None
    settle_seconds: float | None = None
    received: int | None = None
    count_method: str | None = None
    rss_ready_mib: float | None = None
    rss_peak_mib: float | None = None
    pss_peak_mib: float | None = None
    run: int = 1
    storescu_exit_codes: list[int] = field(default_factory=list)
    command: list[str] = field(default_factory=list)


def split(files: Sequence[str], parts: int) -> list[list[str]]:
    """Split ``files`` into ``parts`` contiguous, nearly equal, non-empty chunks."""
    parts = max(1, min(parts, len(files)))
    size, rest = divmod(len(files), parts)
    chunks, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < rest else 0)
        chunks.append(list(files[start:end]))
        start = end
    return chunks


def storescu_command(
    opts_storescu: str, corpus: Corpus, server: Server, listfile: Path
) -> list[str]:
    """The storescu command sending the files named in ``listfile`` as they are stored."""
    profile = ["-xf", str(corpus.storescu_config), PROFILE]
    titles = ["-aet", SCU_AET, "-aec", server.aet]
    return [
        opts_storescu,
        *profile,
        *titles,
        *STORESCU_TIMEOUTS,
        LOOPBACK,
        str(server.dicom_port),
        f"@{listfile}",
    ]


def send(
    corpus: Corpus,
    server: Server,
    assocs: int,
    run_dir: Path,
    storescu: str,
    reg: ProcessRegistry,
    timeout: float,
) -> tuple[float, list[int], list[str]]:
    """Send ``corpus`` over ``assocs`` concurrent storescu processes; return time and codes."""
    cmds = []
    for i, chunk in enumerate(split(corpus.files, assocs)):
        listfile = run_dir / f"part{i}.txt"
        listfile.write_text("".join(f'"{rel}"\n' for rel in chunk))
        cmds.append(storescu_command(storescu, corpus, server, listfile))
    started = time.perf_counter()
    procs = [
        reg.spawn(cmd, log=run_dir / f"storescu{i}.log", cwd=corpus.root, env=dcmtk_env())
        for i, cmd in enumerate(cmds)
    ]
    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"storescu did not finish within {timeout:.0f} s") from exc
    finally:
        for proc in procs:
            reg.stop(proc, grace=2.0)
    elapsed = time.perf_counter() - started
    return elapsed, [int(p.returncode) for p in procs], cmds[0]


def settle(server: Server, expected: int, timeout: float) -> tuple[int, float]:
    """Poll the server's instance count until it reaches ``expected`` or ``timeout`` passes."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    received = -1
    while True:
        with contextlib.suppress(OSError, ValueError, KeyError):
            received = server.count()
        gone = server.proc.poll() is not None
        if received >= expected or gone or time.monotonic() > deadline:
            return received, time.perf_counter() - started
        time.sleep(0.1)


STARTERS: dict[str, Callable[[Path, Options, ProcessRegistry], Server]] = {
    "storescp": lambda d, o, r: start_storescp(d, o, r, fork=False),
    "storescp-fork": lambda d, o, r: start_storescp(d, o, r, fork=True),
    "orthanc": start_orthanc,
    "pacsnode-null": lambda d, o, r: start_pacsnode(d, o, r, null_store=True),
    "pacsnode": start_pacsnode,
}


def run_one(
    target: str,
    corpus: Corpus,
    assocs: int,
    run: int,
    args: argparse.Namespace,
    opts: Options,
    reg: ProcessRegistry,
) -> RunResult:
    """Start a fresh ``target``, send ``corpus`` over ``assocs`` associations, verify, stop."""
    result = RunResult(
        target, corpus.name, assocs, len(corpus.files), corpus.dataset_bytes, run=run
    )
    run_dir = args.workdir / "runs" / f"{target}-{corpus.name}-a{assocs}-r{run}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    warm_page_cache(corpus)
    os.sync()  # do not let the previous run's dirty pages be written back during this one
    server = STARTERS[target](run_dir, opts, reg)
    try:
        with RssSampler(server.proc.pid) as sampler:
            result.rss_ready_mib = round(sampler.current() / MIB, 1)
            seconds, codes, command = send(
                corpus, server, assocs, run_dir, args.storescu, reg, args.send_timeout
            )
            received, settle_s = settle(server, len(corpus.files), args.settle_timeout)
        if target == "pacsnode" and received != len(corpus.files) and opts.pacsnode:
            listed = _pacsnode_ls_count(opts.pacsnode, server.data_dir)
            if listed is not None:
                received, server.count_method = listed, "pacsnode ls --json"
    finally:
        reg.stop(server.proc)
    result.seconds, result.storescu_exit_codes, result.command = seconds, codes, command
    result.received, result.count_method = received, server.count_method
    result.settle_seconds = round(settle_s, 3)
    result.rss_peak_mib = round(sampler.peak / MIB, 1)
    result.pss_peak_mib = round(sampler.peak_pss / MIB, 1)
    result.inst_per_s = round(len(corpus.files) / seconds, 1)
    result.mb_per_s = round(corpus.dataset_bytes / MB / seconds, 1)
    result.status = _status(codes, received, len(corpus.files), run_dir)
    if result.status == "ok" and not args.keep_data:
        args.to_remove.append(run_dir)  # at the end: see remove_at_end()
    return result


def _status(codes: Sequence[int], received: int, expected: int, run_dir: Path) -> str:
    """Summarise the checks of a run as "ok" or a short failure description."""
    problems = []
    if any(codes):
        problems.append(f"storescu exit codes {list(codes)} (logs in {run_dir})")
    if received != expected:
        problems.append(f"server holds {received} of {expected} instances")
    return "; ".join(problems) or "ok"


# --------------------------------------------------------------------------- reporting


def render(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Render a plain-text table: two left-aligned key columns, numbers right-aligned, and a
    free-width last column."""
    table = [list(header), *map(list, rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    lines = []
    for row in table:
        pairs = enumerate(zip(row[:-1], widths, strict=True))
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in pairs]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def format_table(results: Sequence[RunResult]) -> str:
    """Render every run side by side."""
    header = (
        "corpus",
        "target",
        "assocs",
        "run",
        "inst",
        "seconds",
        "inst/s",
        "MB/s",
        "settle s",
        "RSS ready MiB",
        "RSS peak MiB",
        "PSS peak MiB",
        "status",
    )
    rows = [
        (
            r.corpus,
            r.target,
            str(r.assocs),
            str(r.run),
            str(r.instances),
            _fmt(r.seconds, 2),
            _fmt(r.inst_per_s, 1),
            _fmt(r.mb_per_s, 1),
            _fmt(r.settle_seconds, 2),
            _fmt(r.rss_ready_mib, 1),
            _fmt(r.rss_peak_mib, 1),
            _fmt(r.pss_peak_mib, 1),
            r.status,
        )
        for r in results
    ]
    return render(header, rows)


def summarise(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """Median inst/s and MB/s and the highest peak RSS of the successful runs per combination."""
    groups: dict[tuple[str, str, int], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.corpus, r.target, r.assocs), []).append(r)
    summary = []
    for (corpus, target, assocs), runs in groups.items():
        ok = [r for r in runs if r.status == "ok"]
        summary.append(
            {
                "corpus": corpus,
                "target": target,
                "assocs": assocs,
                "runs": len(runs),
                "ok_runs": len(ok),
                "median_inst_per_s": _median([r.inst_per_s for r in ok]),
                "median_mb_per_s": _median([r.mb_per_s for r in ok]),
                "max_rss_peak_mib": max((r.rss_peak_mib or 0.0 for r in ok), default=None),
                "max_pss_peak_mib": max((r.pss_peak_mib or 0.0 for r in ok), default=None),
            }
        )
    return summary


def _median(values: Sequence[float | None]) -> float | None:
    """Median of the non-None values (None if there are none)."""
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 1) if present else None


def format_summary(summary: Sequence[dict[str, Any]]) -> str:
    """Render the per-combination summary."""
    header = ("corpus", "target", "assocs", "median inst/s", "median MB/s", "max RSS MiB",
              "max PSS MiB", "runs")
    rows = [
        (
            s["corpus"],
            s["target"],
            str(s["assocs"]),
            _fmt(s["median_inst_per_s"], 1),
            _fmt(s["median_mb_per_s"], 1),
            _fmt(s["max_rss_peak_mib"], 1),
            _fmt(s["max_pss_peak_mib"], 1),
            f"{s['ok_runs']}/{s['runs']} ok",
        )
        for s in summary
    ]
    return render(header, rows)


def _fmt(value: float | None, digits: int) -> str:
    """Format an optional number."""
    return "-" if value is None else f"{value:.{digits}f}"


def environment_report(opts: Options, args: argparse.Namespace) -> dict[str, Any]:
    """Host and tool versions recorded in the JSON output."""
    return {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "storescu": _version_text(args.storescu).splitlines()[0:1],
        "orthanc": _version_text(opts.orthanc).splitlines()[0:1] if opts.orthanc else None,
        "pacsnode": opts.pacsnode,
        "pacsnode_args": opts.pacsnode_args,
        "orthanc_extra": opts.orthanc_extra,
        "argv": sys.argv,
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ct", type=int, default=1000, help="CT 512x512 instances (0 = skip)")
    p.add_argument("--tiny", type=int, default=5000, help="16x16 instances (0 = skip)")
    p.add_argument(
        "--targets",
        default="pacsnode,orthanc,storescp",
        help=f"comma-separated, from {','.join(STARTERS)}",
    )
    p.add_argument("--assocs", default="1,4", help="comma-separated association counts")
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "pacsnode-bench",
        help="corpus cache and server data (default: %(default)s)",
    )
    p.add_argument("--out", type=Path, default=None, help="write results as JSON here")
    p.add_argument("--seed", type=int, default=0, help="corpus seed (default: 0)")
    p.add_argument("--pacsnode-args", default="", help="extra arguments for pacsnode serve")
    p.add_argument(
        "--orthanc-extra",
        type=json.loads,
        default={},
        help="JSON object merged over the Orthanc config, e.g. '{\"SyncStorageArea\": false}'",
    )
    p.add_argument("--dcmtk-bin", type=Path, default=None, help="directory of DCMTK tools")
    p.add_argument("--orthanc-bin", default=None, help="Orthanc executable")
    p.add_argument("--start-timeout", type=float, default=60.0, help="server start timeout, s")
    p.add_argument("--send-timeout", type=float, default=1800.0, help="send timeout, s")
    p.add_argument(
        "--settle-timeout",
        type=float,
        default=120.0,
        help="how long to wait for the server to hold every instance, s",
    )
    p.add_argument("--repeat", type=int, default=1, help="runs per combination (default: 1)")
    p.add_argument("--keep-data", action="store_true", help="keep server data dirs of runs")
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.assocs = [int(a) for a in args.assocs.split(",") if a.strip()]
    unknown = [t for t in args.targets if t not in STARTERS]
    if unknown:
        p.error(f"unknown target(s) {unknown}; choose from {list(STARTERS)}")
    if not isinstance(args.orthanc_extra, dict):
        p.error("--orthanc-extra must be a JSON object")
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    if any(a < 1 for a in args.assocs):
        p.error("--assocs values must be >= 1")
    args.workdir = args.workdir.resolve()
    return args


def available_targets(args: argparse.Namespace, opts: Options) -> list[str]:
    """Drop targets whose server is not installed, saying so."""
    targets = []
    for target in args.targets:
        if target == "orthanc" and opts.orthanc is None:
            print("SKIP orthanc: Orthanc executable not found (use --orthanc-bin)")
        elif target == "pacsnode" and opts.pacsnode is None:
            print(
                f"SKIP pacsnode: no {Path(sys.prefix) / 'bin' / 'pacsnode'} and none on PATH "
                "(pip install -e . in this interpreter's environment)"
            )
        else:
            targets.append(target)
    return targets


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so that cleanup runs as for Ctrl-C."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit code (1 if any run failed, 130 if interrupted)."""
    args = parse_args(argv)
    opts = make_options(args)
    targets = available_targets(args, opts)
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.to_remove = []
    earlier = args.workdir / "runs"
    if earlier.exists() and not args.keep_data:  # an earlier benchmark's: removed at the end
        args.to_remove.append(earlier.rename(args.workdir / f"runs-old-{time.time_ns()}"))
    corpora: list[Corpus] = []
    results: list[RunResult] = []
    interrupted = False
    reg = ProcessRegistry()
    with terminate_on_sigterm():
        try:
            corpora = [
                build_corpus(kind, n, args.workdir, args.seed)
                for kind, n in (("ct", args.ct), ("tiny", args.tiny))
                if n > 0
            ]
            # Targets take turns run by run, so that a slow spell of the machine falls on
            # all of them alike.
            for corpus in corpora:
                for assocs in args.assocs:
                    for run in range(1, args.repeat + 1):
                        for target in targets:
                            results.append(
                                _run_reporting(target, corpus, assocs, run, args, opts, reg)
                            )
        except KeyboardInterrupt:
            interrupted = True
            print("\ninterrupted: stopping servers", file=sys.stderr)
        finally:
            reg.stop_all()
            remove_at_end(args.to_remove)
    write_report(args, opts, corpora, results)
    if interrupted:
        return 130
    return 0 if results and all(r.status == "ok" for r in results) else 1


def remove_at_end(paths: Sequence[Path]) -> None:
    """Remove the servers' data once every run is done, not between runs: right after
    thousands of files are deleted, ext4 allocates new inodes in the same block groups
    slowly for a few minutes (it skips recently deleted inodes one by one), which slowed
    whichever server ran next, most of all one that creates its files in one directory."""
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def make_options(args: argparse.Namespace) -> Options:
    """Locate the tools and servers (sets ``args.storescu`` too)."""
    args.storescu = find_dcmtk("storescu", args.dcmtk_bin)
    return Options(
        storescp=find_dcmtk("storescp", args.dcmtk_bin),
        echoscu=find_dcmtk("echoscu", args.dcmtk_bin),
        orthanc=find_orthanc(args.orthanc_bin),
        pacsnode=find_pacsnode(),
        pacsnode_args=shlex.split(args.pacsnode_args),
        orthanc_extra=args.orthanc_extra,
        start_timeout=args.start_timeout,
    )


def write_report(
    args: argparse.Namespace, opts: Options, corpora: Sequence[Corpus], results: Sequence[RunResult]
) -> None:
    """Print the table and, with ``--out``, write the JSON report."""
    summary = summarise(results)
    print()
    print(format_table(results))
    if args.repeat > 1:
        print()
        print(format_summary(summary))
    if args.out:
        report = {
            "environment": environment_report(opts, args),
            "corpora": {c.name: _corpus_summary(c) for c in corpora},
            "summary": summary,
            "results": [asdict(r) for r in results],
        }
        args.out.write_text(json.dumps(report, indent=2))
        print(f"\nwrote {args.out}")


def _run_reporting(
    target: str,
    corpus: Corpus,
    assocs: int,
    run: int,
    args: argparse.Namespace,
    opts: Options,
    reg: ProcessRegistry,
) -> RunResult:
    """Run one combination, turning a BenchError into a failed result, and print a line."""
    label = f"{corpus.name:>10} {target:<13} assocs={assocs} run={run}"
    print(f"{label} ...", end=" ", flush=True)
    try:
        result = run_one(target, corpus, assocs, run, args, opts, reg)
    except (BenchError, OSError) as exc:
        result = RunResult(
            target,
            corpus.name,
            assocs,
            len(corpus.files),
            corpus.dataset_bytes,
            status=f"error: {exc}",
            run=run,
        )
    print(
        f"{_fmt(result.inst_per_s, 1)} inst/s, {_fmt(result.mb_per_s, 1)} MB/s, "
        f"peak RSS {_fmt(result.rss_peak_mib, 1)} MiB, PSS {_fmt(result.pss_peak_mib, 1)} MiB"
        f"  [{result.status}]",
        flush=True,
    )
    return result


def _corpus_summary(corpus: Corpus) -> dict[str, Any]:
    """The corpus description written to the JSON report (without the file list)."""
    return {
        "root": str(corpus.root),
        "instances": len(corpus.files),
        "dataset_bytes": corpus.dataset_bytes,
        "file_bytes": corpus.file_bytes,
        "contexts": corpus.contexts,
    }


if __name__ == "__main__":
    sys.exit(main())
