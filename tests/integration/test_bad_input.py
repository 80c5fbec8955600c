"""Bad input on the DICOM port: every case gets a clear answer (the right DIMSE status, an
A-ABORT or a closed connection, and a log line saying why), the server keeps serving (a
DCMTK C-ECHO succeeds right after), and nothing already stored changes (files byte for byte,
index counts), on both index backends.

Malformed traffic is built from raw PDUs (tests/integration/rawdicom.py); well-formed
traffic comes from DCMTK's echoscu and storescu, and from the same raw client where many
associations must be open at once (pynetdicom as a client polls every millisecond in two
threads per association: fifty of them in the test process would starve the server of
this machine's two cores).

Most cases share one server per backend (module scope), started with short association
timeouts; each test snapshots its files, counts and log position first and checks them
after. The concurrency and limit cases start their own.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pydicom
import pytest
from pynetdicom.dsutils import split_dataset

from pacsnode.core.archive import Archive
from pacsnode.synthetic import generate_corpus, generate_ct_series
from tests.conftest import (
    DCMTK_ENV,
    PacsnodeServer,
    dcmtk,
    free_port,
    pg_database,
    require_postgres,
)
from tests.integration import rawdicom as raw

pytestmark = pytest.mark.dcmtk

# Short association timeouts, so that a connection the server should drop is dropped within
# the test's time budget (PS3.8 9.1.4 ARTIM; pynetdicom's network idle timer).
SHORT_TIMEOUTS = ("--acse-timeout", "2", "--network-timeout", "2", "--dimse-timeout", "5")
STORAGE_CONTEXTS = [(1, raw.VERIFICATION, [raw.IMPLICIT_VR_LE]),
                    (3, raw.CT_IMAGE_STORAGE, [raw.EXPLICIT_VR_LE]),
                    (5, raw.MR_IMAGE_STORAGE, [raw.EXPLICIT_VR_LE])]
VERIFICATION_ONLY = [(1, raw.VERIFICATION, [raw.IMPLICIT_VR_LE])]
A_ABORT_INVALID_PDU_PARAMETER = bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 6])
A_ASSOCIATE_RJ_LOCAL_LIMIT = bytes([0x03, 0, 0, 0, 0, 4, 0, 2, 3, 2])  # transient, provider


# -- corpora and the archive's state --------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    baseline: list[Path]  # stored before every test
    extra: list[Path]  # sent by well-behaved clients while bad ones misbehave
    crowd: list[Path]  # 150 instances for 50 simultaneous associations
    ct_small: Path  # a 128x128 CT
    ct_large: Path  # a 512x512 CT (512 KiB of pixel data)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("bad-input-corpus")
    return Corpus(
        baseline=generate_corpus(root / "baseline", patients=1, studies_per_patient=1,
                                 series_per_study=2, instances_per_series=2, seed=101),
        extra=generate_corpus(root / "extra", patients=1, studies_per_patient=1,
                              series_per_study=1, instances_per_series=3, seed=102),
        crowd=generate_corpus(root / "crowd", patients=5, studies_per_patient=2,
                              series_per_study=3, instances_per_series=5, rows=32,
                              columns=32, seed=103),
        ct_small=generate_ct_series(root / "ct-small", 1, rows=128, columns=128, seed=104)[0],
        ct_large=generate_ct_series(root / "ct-large", 1, rows=512, columns=512, seed=105)[0],
    )


def data_set_of(path: Path) -> bytes:
    """The encoded data set of a Part-10 file (everything after the file meta group)."""
    _meta, offset = split_dataset(path)
    return path.read_bytes()[offset:]


def stored_files(server: PacsnodeServer) -> dict[str, str]:
    """Every stored file (temporary files excluded) as key -> sha256 of its bytes."""
    root = server.data_dir / "files"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp"}


def spool_files(server: PacsnodeServer) -> list[Path]:
    return sorted((server.data_dir / "files" / "tmp").glob("*"))


def archive_of(server: PacsnodeServer) -> Archive:
    return Archive.open(server.data_dir, db=server.db)


def counts(server: PacsnodeServer) -> dict[str, int]:
    with archive_of(server) as archive:
        return archive.counts()


def find(server: PacsnodeServer, uid: str) -> object:
    with archive_of(server) as archive:
        return archive.find(uid)


def server_rss(server: PacsnodeServer) -> dict[int, int]:
    """Resident memory of the server process and its receiving processes, by pid."""
    assert server.proc is not None
    parent = psutil.Process(server.proc.pid)
    return {p.pid: p.memory_info().rss for p in [parent, *parent.children(recursive=True)]}


def echoscu(server: PacsnodeServer) -> None:
    result = subprocess.run([dcmtk("echoscu"), "-to", "5", "-aec", server.aet, "127.0.0.1",
                             str(server.port)], env=DCMTK_ENV, capture_output=True, text=True,
                            timeout=15)
    assert result.returncode == 0, f"C-ECHO failed: {result.stderr}\n{server.log()[-3000:]}"


def storescu(server: PacsnodeServer, files: list[Path]) -> None:
    result = subprocess.run([dcmtk("storescu"), "-to", "5", "-aec", server.aet, "127.0.0.1",
                             str(server.port), *map(str, files)], env=DCMTK_ENV,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"storescu failed: {result.stderr}"


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@dataclass
class Pacs:
    """A running server holding (at least) the baseline corpus, and what it held and had
    logged when the test began."""

    server: PacsnodeServer
    files: dict[str, str]
    counts: dict[str, int]
    log_start: int = 0

    @classmethod
    def snapshot(cls, server: PacsnodeServer) -> Pacs:
        assert server.alive(), server.log()[-3000:]
        return cls(server=server, files=stored_files(server), counts=counts(server),
                   log_start=len(server.log()))

    @classmethod
    def start(cls, factory: Callable[..., PacsnodeServer], baseline: list[Path],
              *extra: str) -> Pacs:
        server = factory(*extra)
        storescu(server, baseline)
        pacs = cls.snapshot(server)
        assert pacs.counts["instances"] == len(baseline) == len(pacs.files), pacs
        return pacs

    def log(self) -> str:
        """What the server logged since the test began."""
        return self.server.log()[self.log_start:]

    def assert_serving_and_unchanged(self) -> None:
        """The server is alive, answers C-ECHO, has no temporary file left, and its files
        and index are what they were before the test."""
        assert self.server.alive(), self.server.log()[-3000:]
        echoscu(self.server)
        assert wait_for(lambda: not spool_files(self.server), 3.0), spool_files(self.server)
        assert stored_files(self.server) == self.files
        assert counts(self.server) == self.counts


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                  corpus: Corpus) -> Iterator[PacsnodeServer]:
    """One server per backend for the tests that leave its content as it was (each checks
    that): short association timeouts, the baseline corpus stored. Starting a server per
    test would cost more than the tests themselves."""
    with contextlib.ExitStack() as stack:
        db: str | None = None
        if request.param == "postgresql":
            require_postgres()
            db = stack.enter_context(pg_database())
        root = tmp_path_factory.mktemp(f"bad-input-{request.param}")
        server = PacsnodeServer(data_dir=root / "data", db=db, port=free_port(),
                                extra=SHORT_TIMEOUTS)
        try:
            server.start()
            storescu(server, corpus.baseline)
            yield server
        finally:
            server.stop()


@pytest.fixture
def pacs(shared_server: PacsnodeServer) -> Pacs:
    """The shared server with short association timeouts, as it is when the test begins."""
    return Pacs.snapshot(shared_server)


@pytest.fixture
def raw_assoc(pacs: Pacs) -> Iterator[raw.RawAssociation]:
    assoc = raw.RawAssociation.open(pacs.server.port, STORAGE_CONTEXTS)
    assert set(assoc.accepted) == {1, 3, 5}, assoc.accepted
    yield assoc
    assoc.close()


def new_uid() -> str:
    return pydicom.uid.generate_uid()


# -- 1. a non-DICOM file as a C-STORE data set ------------------------------------------------


def test_non_dicom_data_set_is_refused(pacs: Pacs, raw_assoc: raw.RawAssociation) -> None:
    payloads = {
        "random": random.Random(1).randbytes(4096),
        "text": b"This is not a DICOM file, just some text.\n" * 100,
        "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(2).randbytes(2000),
    }
    for name, payload in payloads.items():
        uid = new_uid()
        rsp = raw_assoc.store(3, raw.CT_IMAGE_STORAGE, uid, payload)
        assert 0xC000 <= rsp.Status <= 0xCFFF, (name, rsp)
        assert rsp.get("ErrorComment"), (name, rsp)
        assert f"refused (0x{rsp.Status:04X}) {uid}" in pacs.log(), name
        assert find(pacs.server, uid) is None
    # The association survives a refused data set: it still answers.
    assert raw_assoc.echo(1).Status == 0x0000
    raw_assoc.release()
    pacs.assert_serving_and_unchanged()


# -- 2. a truncated file ----------------------------------------------------------------------


def test_truncated_data_set_is_refused(pacs: Pacs, raw_assoc: raw.RawAssociation,
                                       corpus: Corpus) -> None:
    data = data_set_of(corpus.ct_small)
    uid = pydicom.dcmread(corpus.ct_small, stop_before_pixels=True).SOPInstanceUID
    pixel_tag = data.rfind(b"\xe0\x7f\x10\x00")
    assert pixel_tag > 0
    cuts = {"inside the pixel data": len(data) - 4096,
            "inside the pixel data header": pixel_tag + 6}
    for where, cut in cuts.items():
        rsp = raw_assoc.store(3, raw.CT_IMAGE_STORAGE, uid, data[:cut])
        assert rsp.Status == 0xC000, (where, rsp)
        assert rsp.ErrorComment.startswith("truncated"), (where, rsp.ErrorComment)
        assert find(pacs.server, uid) is None, where
    assert f"refused (0xC000) {uid}: truncated" in pacs.log()
    pacs.assert_serving_and_unchanged()
    # The refusals left nothing behind that would stop the complete data set.
    assert raw_assoc.store(3, raw.CT_IMAGE_STORAGE, uid, data).Status == 0x0000
    with archive_of(pacs.server) as archive, archive.open_instance(uid) as fh:
        assert fh.read().endswith(data)
    raw_assoc.release()


# -- 3. a data set that does not say, or contradicts, what it is ------------------------------


def test_data_set_without_sop_instance_uid_is_refused(pacs: Pacs,
                                                      raw_assoc: raw.RawAssociation,
                                                      corpus: Corpus) -> None:
    ds = pydicom.dcmread(corpus.extra[0])
    uid = ds.SOPInstanceUID
    del ds.SOPInstanceUID
    rsp = raw_assoc.store(5 if ds.Modality == "MR" else 3, ds.SOPClassUID, uid,
                          raw.encode_dataset(ds))
    assert rsp.Status == 0xC001, rsp
    assert "SOPInstanceUID is missing" in rsp.ErrorComment
    assert f"refused (0xC001) {uid}: SOPInstanceUID is missing" in pacs.log()
    assert find(pacs.server, uid) is None
    raw_assoc.release()
    pacs.assert_serving_and_unchanged()


def test_sop_class_differing_from_the_request_is_refused(pacs: Pacs,
                                                         raw_assoc: raw.RawAssociation,
                                                         corpus: Corpus) -> None:
    ds = pydicom.dcmread(corpus.ct_small)
    assert ds.SOPClassUID == raw.CT_IMAGE_STORAGE
    ds.SOPInstanceUID = new_uid()
    # A CT data set announced (and sent on the presentation context) as MR Image Storage.
    rsp = raw_assoc.store(5, raw.MR_IMAGE_STORAGE, ds.SOPInstanceUID, raw.encode_dataset(ds))
    assert rsp.Status == 0xA900, rsp
    assert raw.CT_IMAGE_STORAGE in rsp.ErrorComment
    assert f"refused (0xA900) {ds.SOPInstanceUID}: SOPClassUID" in pacs.log()
    assert find(pacs.server, ds.SOPInstanceUID) is None
    raw_assoc.release()
    pacs.assert_serving_and_unchanged()


# -- 4. garbage on the DICOM port -------------------------------------------------------------

GARBAGE = {
    "random-1k": random.Random(4).randbytes(1024),
    # 35 bytes: read as five 6-byte "PDU headers" of unknown type, then 5 bytes that are
    # not a whole header.
    "http-get": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
}


@pytest.mark.parametrize("payload", [
    pytest.param(GARBAGE["random-1k"], id="random-1k"),
    pytest.param(GARBAGE["http-get"], id="http-get"),
])
def test_garbage_on_the_port_is_aborted(pacs: Pacs, payload: bytes) -> None:
    with raw.connect(pacs.server.port) as sock:
        sock.sendall(payload)
        answer = raw.wait_closed(sock, timeout=3.5)
    # Nothing but A-ABORT PDUs (PS3.8 9.3.8), if anything, before the connection closed.
    assert len(answer) % 10 == 0
    assert all(answer[i] == raw.A_ABORT for i in range(0, len(answer), 10)), answer.hex()
    log = pacs.log()
    assert "Unknown PDU type received" in log or "A-ABORT to" in log, log[-3000:]
    pacs.assert_serving_and_unchanged()


# -- 5. a PDU announcing 4 GB -----------------------------------------------------------------


@pytest.mark.parametrize("after_association", [True, False],
                         ids=["p-data-after-association", "first-pdu"])
def test_4gb_pdu_is_aborted_without_buffering(pacs: Pacs, after_association: bool) -> None:
    if after_association:
        assoc = raw.RawAssociation.open(pacs.server.port, STORAGE_CONTEXTS)
        sock, header = assoc.sock, bytes([raw.P_DATA_TF, 0, 0xFF, 0xFF, 0xFF, 0xFF])
    else:
        sock = raw.connect(pacs.server.port)
        header = bytes([raw.A_ASSOCIATE_RQ, 0, 0xFF, 0xFF, 0xFF, 0xFF])
    with sock:
        sock.sendall(header + b"\x00" * 4096)
        answer = raw.wait_closed(sock, timeout=5.0)
    assert answer == A_ABORT_INVALID_PDU_PARAMETER, answer.hex()
    assert "announced PDU length 4294967295 exceeds" in pacs.log()
    for pid, rss in server_rss(pacs.server).items():
        assert rss < 300 * 1024 * 1024, f"pid {pid} RSS {rss / 2**20:.0f} MiB"
    pacs.assert_serving_and_unchanged()


# -- 6. a connection dropped mid-transfer -----------------------------------------------------


@pytest.mark.parametrize("how", ["close", "a-abort"])
def test_connection_dropped_mid_transfer_keeps_nothing(pacs: Pacs, corpus: Corpus,
                                                       how: str) -> None:
    data = data_set_of(corpus.ct_large)
    uid = pydicom.dcmread(corpus.ct_large, stop_before_pixels=True).SOPInstanceUID
    assoc = raw.RawAssociation.open(pacs.server.port, STORAGE_CONTEXTS)
    try:
        assoc.send_store_command(3, raw.CT_IMAGE_STORAGE, uid)
        half, size = len(data) // 2, 16 * 1024
        for start in range(0, half, size):
            assoc.sock.sendall(raw.p_data_tf([(3, 0x00, data[start:min(start + size, half)])]))
        # The server has spooled what it received so far...
        assert wait_for(lambda: bool(spool_files(pacs.server)), 3.0)
        if how == "a-abort":
            assoc.sock.sendall(raw.A_ABORT_PDU)
    finally:
        assoc.close()
    # ... and keeps nothing of it once the connection is gone.
    assert wait_for(lambda: not spool_files(pacs.server), 3.0), spool_files(pacs.server)
    assert wait_for(lambda: "closed mid-transfer" in pacs.log(), 3.0)
    assert find(pacs.server, uid) is None
    pacs.assert_serving_and_unchanged()


# -- 7. idle and half-open connections --------------------------------------------------------


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def test_idle_and_half_open_connections_do_not_delay_others(
        pacsnode_server: Callable[..., PacsnodeServer], corpus: Corpus) -> None:
    # Default timeouts (30 s and more): the stalled connections stay open throughout.
    pacs = Pacs.start(pacsnode_server, corpus.baseline)
    idle = raw.connect(pacs.server.port)
    half = raw.connect(pacs.server.port)
    try:
        half.sendall(raw.a_associate_rq(STORAGE_CONTEXTS)[:10])
        time.sleep(0.2)
        started = time.monotonic()
        echoscu(pacs.server)
        storescu(pacs.server, corpus.extra)
        elapsed = time.monotonic() - started
        assert elapsed < 5.0, f"echoscu + storescu took {elapsed:.1f}s"
        assert _still_open(idle) and _still_open(half)  # they really were held meanwhile
    finally:
        idle.close()
        half.close()
    after = counts(pacs.server)
    assert after["instances"] == pacs.counts["instances"] + len(corpus.extra)
    files = stored_files(pacs.server)
    assert {k: files[k] for k in pacs.files} == pacs.files
    for path in corpus.extra:
        assert find(pacs.server, pydicom.dcmread(path).SOPInstanceUID) is not None


def test_idle_connection_is_closed_after_the_acse_timeout(pacs: Pacs) -> None:
    with raw.connect(pacs.server.port) as sock:
        started = time.monotonic()
        assert raw.wait_closed(sock, timeout=4.5) == b""
        assert time.monotonic() - started > 1.5  # closed by the timeout, not at once
    pacs.assert_serving_and_unchanged()


def test_half_sent_association_request_is_closed(pacs: Pacs) -> None:
    with raw.connect(pacs.server.port) as sock:
        sock.sendall(raw.a_associate_rq(STORAGE_CONTEXTS)[:10])
        raw.wait_closed(sock, timeout=3.5)
    pacs.assert_serving_and_unchanged()


# -- 8. many simultaneous associations --------------------------------------------------------


def test_fifty_simultaneous_associations(pacsnode_server: Callable[..., PacsnodeServer],
                                         corpus: Corpus) -> None:
    """50 associations open at once (a barrier holds every client until all are
    established), each storing 3 distinct instances: all stored once, counts right."""
    pacs = Pacs.start(pacsnode_server, corpus.baseline)
    n = 50
    files = corpus.crowd
    assert len(files) == 3 * n
    datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    contexts = [(1, raw.CT_IMAGE_STORAGE, [raw.EXPLICIT_VR_LE]),
                (3, raw.MR_IMAGE_STORAGE, [raw.EXPLICIT_VR_LE])]
    context_of = {raw.CT_IMAGE_STORAGE: 1, raw.MR_IMAGE_STORAGE: 3}
    barrier = threading.Barrier(n)
    statuses: dict[str, int] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        assoc = None
        try:
            assoc = raw.RawAssociation.open(pacs.server.port, contexts, calling=f"CROWD{i:02d}",
                                            timeout=30)
            barrier.wait(timeout=30)  # all 50 associations are open at once
            for path, ds in list(zip(files, datasets, strict=True))[3 * i:3 * i + 3]:
                rsp = assoc.store(context_of[ds.SOPClassUID], ds.SOPClassUID,
                                  ds.SOPInstanceUID, data_set_of(path), timeout=30)
                with lock:
                    statuses[ds.SOPInstanceUID] = int(rsp.Status)
            assoc.release()
        except Exception as exc:
            barrier.abort()
            with lock:
                errors.append(f"client {i}: {exc!r}")
        finally:
            if assoc is not None:
                assoc.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert len(statuses) == 3 * n and set(statuses.values()) == {0}, statuses

    def summaries() -> list[str]:  # logged when each connection closes, just after release
        return sorted(re.findall(r"association from (CROWD\d\d)@\S+ released: 3 stored",
                                 pacs.log()))

    wait_for(lambda: len(summaries()) >= n, 5.0)
    assert summaries() == [f"CROWD{i:02d}" for i in range(n)], pacs.log()[-3000:]
    expected = {
        "patients": pacs.counts["patients"] + 5, "studies": pacs.counts["studies"] + 10,
        "series": pacs.counts["series"] + 30, "instances": pacs.counts["instances"] + 3 * n,
    }
    assert counts(pacs.server) == expected
    with archive_of(pacs.server) as archive:
        for ds in datasets:
            assert list(archive.instance_keys(ds.SOPInstanceUID)) == [ds.SOPInstanceUID]
    files_now = stored_files(pacs.server)
    assert len(files_now) == len(pacs.files) + 3 * n
    assert {k: files_now[k] for k in pacs.files} == pacs.files
    echoscu(pacs.server)


def _hold_associations(port: int, n: int) -> list[raw.RawAssociation]:
    """``n`` associations requested at once (the server negotiates them concurrently)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            socks.append(raw.connect(port, timeout=30))
            socks[-1].sendall(raw.a_associate_rq(VERIFICATION_ONLY))
        for sock in socks:
            pdu = raw.read_pdu(sock, timeout=30)
            assert pdu is not None and pdu[0] == raw.A_ASSOCIATE_AC, pdu
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return [raw.RawAssociation(sock=sock, max_pdu=0, accepted={1: raw.IMPLICIT_VR_LE})
            for sock in socks]


def _assert_limit(pacs: Pacs, limit: int) -> None:
    held: list[raw.RawAssociation] = []
    try:
        held += _hold_associations(pacs.server.port, limit)
        with raw.connect(pacs.server.port) as sock:
            sock.sendall(raw.a_associate_rq(VERIFICATION_ONLY))
            pdu = raw.read_pdu(sock, timeout=10.0)
            assert pdu is not None and pdu[1] == A_ASSOCIATE_RJ_LOCAL_LIMIT, pdu
            assert raw.wait_closed(sock, timeout=5.0) == b""
        assert wait_for(lambda: "rejected (transient): local limit exceeded: at most "
                        f"{limit} simultaneous" in pacs.log(), 3.0)
        # The held associations still work, and a released one frees its place.
        assert held[0].echo(1).Status == 0x0000
        held.pop().release()
        assert wait_for(lambda: "released: no instances" in pacs.log(), 3.0)
        # The place frees when the released association's thread has ended, a moment after
        # its connection closed: retry briefly.
        deadline = time.monotonic() + 3.0
        while True:
            try:
                held.append(raw.RawAssociation.open(pacs.server.port, VERIFICATION_ONLY))
                break
            except ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert held[-1].echo(1).Status == 0x0000
    finally:
        for assoc in held:
            assoc.close()
    pacs.assert_serving_and_unchanged()


def test_association_beyond_the_limit_is_rejected(
        pacsnode_server: Callable[..., PacsnodeServer], corpus: Corpus) -> None:
    """--max-associations N: the N+1st simultaneous association gets A-ASSOCIATE-RJ
    (transient, service-provider presentation, local limit exceeded; PS3.8 9.3.4). One
    receiving process: see test_default_limit_is_100_associations for several."""
    _assert_limit(Pacs.start(pacsnode_server, corpus.baseline, "--workers", "1",
                             "--max-associations", "5"), 5)


def test_default_limit_is_100_associations(tmp_path: Path, corpus: Corpus) -> None:
    """The default limit, with the default receiving processes, once (on SQLite: the index
    plays no part in it)."""
    server = PacsnodeServer(data_dir=tmp_path / "data", db=None, port=free_port())
    try:
        server.start()
        storescu(server, corpus.baseline)
        pacs = Pacs(server=server, files=stored_files(server), counts=counts(server))
        _assert_limit(pacs, 100)
    finally:
        server.stop()
