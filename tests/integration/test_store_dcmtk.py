"""C-STORE (PS3.4 B) from DCMTK's storescu into pacsnode serve, on both index backends.

What is sent:

* every file of pydicom's test data and of the pydicom-data package (compressed, big endian,
  deflated, multi-frame, colour, odd vendors, broken files), in one deterministic order,
  each in its own transfer syntax (an exact ``storescu -xf`` profile, one presentation
  context per SOP class and transfer syntax), plus one file of a SOP class nobody knows;
* a generated multi-patient corpus (fixed seed), over one association and over four
  storescu processes at once.

What must hold: every stored data set is byte-identical to what storescu put on the wire
(file meta information aside), counts and derived counts are right, refusals are clean (the
server stays up and answers C-ECHO), and sending everything again changes nothing.

"What storescu put on the wire" is not always the file's own data set: storescu parses
each file and encodes it again, and for some files (about a quarter of the pydicom corpus)
that changes bytes: it drops trailing padding (FFFC,FFFC), recalculates group lengths,
writes undefined-length sequences with explicit lengths, sends encapsulated pixel data as
OB where the file says OW, and deflates deflated data sets anew. The reference is
therefore the same storescu run received by DCMTK's storescp in bit-preserving mode
(``+B``), which writes data sets exactly as received.

Files storescu itself refuses to send are files DCMTK cannot parse ("Bad DICOM file":
truncated files, a file with a garbled explicit VR) and files in which DCMTK finds no SOP
Class or Instance UID (DICOMDIRs, bare data sets without them, a few files DCMTK misreads).
Those go out with ``pacsnode send`` instead (pynetdicom, each file as stored), so that the
truncated and malformed ones reach the server too and must be refused cleanly; the few
whose file meta lacks what a C-STORE request needs cannot be sent by any client.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AllStoragePresentationContexts

from pacsnode import Archive
from pacsnode.core.dicom_file import IMPLEMENTATION_CLASS_UID
from pacsnode.synthetic import generate_corpus
from tests.conftest import DCMTK_ENV, PacsnodeServer, dcmtk, free_port
from tests.integration.corpus import (
    ExpectedIndex,
    FileInfo,
    Storescp,
    StorescuRun,
    dataset_bytes,
    describe,
    expected_index,
    parse_storescu_output,
    pydicom_data_files,
    pydicom_test_files,
    run_storescu,
    storescu_command,
    write_storescu_config,
)

pytestmark = pytest.mark.dcmtk

SUPPORTED_SOP_CLASSES = {c.abstract_syntax for c in AllStoragePresentationContexts}
UNKNOWN_SOP_CLASS = "2.25.233934278677685151906589627140823233277"  # a SOP class no one implements
STORESCU_OWN_REFUSALS = ("Bad DICOM file", "No SOP Class or Instance UID in file")


@functools.cache
def real_world_files() -> tuple[Path, ...]:
    data = pydicom_data_files()
    assert data, "pydicom-data is not installed (pip install -e '.[test]')"
    files = pydicom_test_files() + data
    assert len(files) > 200, f"only {len(files)} files in pydicom's and pydicom-data's sets"
    return tuple(files)


def unknown_sop_class_file(directory: Path) -> Path:
    """CT_small.dcm turned into an instance of a SOP class pacsnode cannot know."""
    ds = pydicom.dcmread(Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UNKNOWN_SOP_CLASS
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = \
        "2.25.28570482962058360376678824678165353542"
    path = directory / "unknown_sop_class.dcm"
    directory.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


# -- helpers ------------------------------------------------------------------------------


def echo_ok(server: PacsnodeServer) -> None:
    assert server.alive(), f"pacsnode serve died:\n{server.log()[-3000:]}"
    echo = subprocess.run([dcmtk("echoscu"), "-aec", server.aet, "127.0.0.1", str(server.port)],
                          env=DCMTK_ENV, capture_output=True, text=True, timeout=30)
    assert echo.returncode == 0, echo.stdout + echo.stderr


def ls_json(server: PacsnodeServer) -> list[dict]:
    return json.loads(server.cli("ls", "--json").stdout)


def capture_wire_bytes(files: list[Path], tmp_path: Path) -> dict[str, Path]:
    """Send ``files`` with the same storescu command to a bit-preserving storescp: what it
    writes is, per SOP Instance UID, the data set storescu sends (the last one wins)."""
    scp = Storescp(dcmtk("storescp"), dcmtk("echoscu"), DCMTK_ENV, tmp_path / "wire",
                   free_port())
    try:
        run = run_storescu(dcmtk("storescu"), DCMTK_ENV, scp.port, files,
                           tmp_path / "scu-wire", called_aet=scp.aet)
        assert run.returncode == 0, run.output[-3000:]
    finally:
        scp.stop()
    return scp.received()


def files_snapshot(data_dir: Path) -> dict[str, tuple[int, int, str]]:
    """Every stored file: relative path -> (mtime in ns, size, sha256)."""
    root = data_dir / "files"
    out = {}
    for path in sorted(root.rglob("*.dcm")):
        if path.parent.name == "tmp" and path.parent.parent == root:
            continue
        st = path.stat()
        out[path.relative_to(root).as_posix()] = (
            st.st_mtime_ns, st.st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def association_summaries(log: str, calling_aet: str = "STORESCU") -> list[Counter[str]]:
    """The outcome counts pacsnode logs when an association from ``calling_aet`` ends."""
    out = []
    for m in re.finditer(rf"association from {calling_aet}@\S+ (?:released|aborted): (.*)",
                         log):
        counts: Counter[str] = Counter()
        for part in m.group(1).split(", "):
            if part != "no instances":
                n, kind = part.split(" ", 1)
                counts[kind.strip()] += int(n)
        out.append(counts)
    return out


def wait_for_summaries(server: PacsnodeServer, count: int, calling_aet: str = "STORESCU",
                       timeout: float = 10.0) -> list[Counter[str]]:
    """The association summaries once there are ``count`` (pacsnode logs an association's
    end just after storescu may have exited)."""
    deadline = time.monotonic() + timeout
    while True:
        summaries = association_summaries(server.log(), calling_aet)
        if len(summaries) >= count or time.monotonic() > deadline:
            assert len(summaries) == count, server.log()[-3000:]
            return summaries
        time.sleep(0.05)


def assert_index_matches(server: PacsnodeServer, expected: ExpectedIndex) -> None:
    """``pacsnode ls --json``: the hierarchy, the counts and the derived attributes."""
    tree = ls_json(server)
    counts = {"patients": len(tree),
              "studies": sum(len(p["studies"]) for p in tree),
              "series": sum(len(s["series"]) for p in tree for s in p["studies"]),
              "instances": sum(se["num_instances"] for p in tree for s in p["studies"]
                               for se in s["series"])}
    assert counts == expected.counts()
    want_studies = expected.study_summary()
    want_patients = expected.patient_summary()
    series_count: Counter[str] = Counter(i.series_instance_uid
                                         for i in expected.instances.values())
    seen_studies = set()
    for p in tree:
        key = (p["patient_id"], p["issuer_of_patient_id"])
        assert key in want_patients, f"unexpected patient {key}"
        want = want_patients[key]
        got = {k: p[k] for k in ("num_studies", "num_series", "num_instances")}
        assert got == want, f"patient {key}"
        for s in p["studies"]:
            uid = s["study_instance_uid"]
            seen_studies.add(uid)
            w = want_studies[uid]
            assert w["patient"] == key, f"study {uid} under the wrong patient"
            got_s = {k: s[k] for k in ("num_series", "num_instances", "modalities_in_study")}
            want_s = {k: w[k] for k in ("num_series", "num_instances", "modalities_in_study")}
            assert got_s == want_s, f"study {uid}"
            for se in s["series"]:
                su = se["series_instance_uid"]
                assert expected.series_study[su] == uid, f"series {su} in the wrong study"
                assert se["num_instances"] == series_count[su], f"series {su}"
                assert se["modality"] == expected.series_modality[su]
    assert seen_studies == set(want_studies)


def assert_stored_bytes(server: PacsnodeServer, expected: dict[str, FileInfo],
                        wire: dict[str, Path] | None, sending_aet: str | None = None) -> int:
    """Every expected instance is in the archive, and its stored data set is byte for byte
    what was sent: ``wire[uid]``'s data set (storescp's bit-preserving copy of what storescu
    sent, or the file pacsnode send sent as stored), or the sent file's own data set when
    ``wire`` is None. Returns how many equal their file's data set exactly."""
    same_as_file = 0
    with Archive.open(server.data_dir, db=server.db) as archive:
        assert archive.counts()["instances"] == len(expected)
        for uid, info in expected.items():
            node = archive.find(uid)
            assert node is not None and node.level == "IMAGE", f"{uid} ({info.path.name})"
            with archive.open_instance(uid) as fh:
                stored = fh.read()
            offset = node.columns["data_offset"]
            assert stored[:132] == b"\0" * 128 + b"DICM", info.path.name
            meta = pydicom.filereader.read_file_meta_info(archive.store.path_of(
                node.columns["storage_key"]))
            assert meta.MediaStorageSOPInstanceUID == uid
            assert meta.TransferSyntaxUID == info.transfer_syntax, info.path.name
            assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID  # pacsnode's meta
            assert meta.SourceApplicationEntityTitle == server.aet
            if sending_aet is not None:
                assert meta.SendingApplicationEntityTitle == sending_aet
            assert node.columns["transfer_syntax_uid"] == info.transfer_syntax
            assert node.columns["file_size"] == len(stored)
            data = dataset_bytes(stored)
            assert stored[offset:] == data, f"data_offset of {info.path.name} is wrong"
            digest = hashlib.sha256(data).hexdigest()
            assert node.columns["digest"] == digest, f"digest of {info.path.name} is wrong"
            assert digest[:16] in node.columns["storage_key"]
            sent = dataset_bytes(wire[uid] if wire is not None else info.path)
            assert data == sent, (f"{info.path.name}: stored data set differs from what was "
                                  f"sent ({len(data)} vs {len(sent)} bytes)")
            same_as_file += data == dataset_bytes(info.path)
    return same_as_file


# -- (a) every real-world file -------------------------------------------------------------


SEND_LINE = re.compile(r"^(0x[0-9A-F]{4}|no status) (\S+?)(?:: (.*))?$")
TRUNCATED_NAMES = ("truncated", "too_short")


def pacsnode_send(server: PacsnodeServer, files: list[Path]) -> dict[Path, tuple[int | None,
                                                                               str]]:
    """``pacsnode send`` (pynetdicom, every file as stored, its own transfer syntax) to the
    server: per file, the response status (None: not sent) and the detail."""
    if not files:
        return {}
    result = server.cli("send", "127.0.0.1", str(server.port), *map(str, files),
                        "-c", server.aet, "--aet", "SENDSCU", check=False)
    out: dict[Path, tuple[int | None, str]] = {}
    for line in result.stdout.splitlines():
        if m := SEND_LINE.match(line):
            status = None if m.group(1) == "no status" else int(m.group(1), 16)
            out[Path(m.group(2))] = (status, m.group(3) or "")
    assert set(out) == set(files), result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == (0 if all(s == 0 for s, _ in out.values()) else 1)
    return out


def test_every_pydicom_and_pydicom_data_file(pacsnode_server, tmp_path):
    """Every file goes out with storescu; the files storescu will not send go out as stored
    with ``pacsnode send`` (so that truncated and malformed files reach the server too)."""
    files = list(real_world_files())
    files.insert(len(files) // 2, unknown_sop_class_file(tmp_path / "extra"))
    infos = {p: describe(p) for p in files}
    wire = capture_wire_bytes(files, tmp_path)
    server = pacsnode_server()

    def send_everything(tag: str) -> tuple[StorescuRun, dict[Path, tuple[int | None, str]]]:
        run = run_storescu(dcmtk("storescu"), DCMTK_ENV, server.port, files,
                           tmp_path / f"scu-{tag}", called_aet=server.aet)
        assert run.returncode == 0, run.output[-3000:]
        leftovers = [p for p in files if p not in run.responses
                     and not run.errors.get(p, "").startswith("No presentation context")]
        return run, pacsnode_send(server, leftovers)

    run, sent = send_everything("first")
    echo_ok(server)
    log = server.log()

    # Every file is accounted for: stored, or refused cleanly by pacsnode (a declined
    # presentation context or an error status), or not DICOM enough for any client to send.
    accepted: list[FileInfo] = []  # in the order received
    reference = dict(wire)  # SOP Instance UID -> what was sent last (its data set)
    refused_context, refused_store, storescu_refused = [], [], []
    for path in files:
        info = infos[path]
        response = run.responses.get(path)
        if response is None:
            error = run.errors.get(path, "")
            if error.startswith("No presentation context"):
                # pacsnode declined the context: a SOP class (or transfer syntax) it lacks
                assert (info.sop_class_uid not in SUPPORTED_SOP_CLASSES
                        or info.transfer_syntax not in AllTransferSyntaxes), path
                refused_context.append(path)
            else:
                assert error.startswith(STORESCU_OWN_REFUSALS), f"{path}: {error!r}"
                storescu_refused.append(path)
        elif info.uids_valid:
            assert response == "Success", f"{path.name}: {response}"
            accepted.append(info)
        else:  # a required UID missing or malformed: refused with a Cxxx status
            assert response.startswith("Error: CannotUnderstand"), f"{path.name}: {response}"
            refused_store.append(path)
            if info.sop_instance_uid:
                assert any("0xC001" in line and info.sop_instance_uid in line
                           for line in log.splitlines()), path.name
    for path in storescu_refused:  # sent by pacsnode's own client, as stored
        info = infos[path]
        status, detail = sent[path]
        if status == 0:
            assert info.uids_valid, path.name
            accepted.append(info)
            reference[info.sop_instance_uid] = path
        elif status is None:  # the file meta lacks what a C-STORE needs, or no context
            assert detail.startswith(("not a DICOM file", "not sent: No presentation context")),\
                f"{path.name}: {detail}"
            if detail.startswith("not sent"):
                assert info.sop_class_uid not in SUPPORTED_SOP_CLASSES, path.name
        else:
            assert status >> 12 == 0xC and detail, f"{path.name}: 0x{status:04X} {detail}"
            refused_store.append(path)
    for path in files:
        if any(word in path.name for word in TRUNCATED_NAMES):
            assert path in refused_store, f"{path.name} was not refused"
            assert path in run.responses or sent[path][0] == 0xC000, path.name
    assert tmp_path / "extra" / "unknown_sop_class.dcm" in refused_context
    assert refused_store, "the corpus has files without Study/Series UIDs: none refused?"
    assert len(accepted) >= 190, f"only {len(accepted)} files stored"
    echo_ok(server)
    log = server.log()
    assert "Traceback" not in log and "unexpected failure" not in log

    expected = expected_index(accepted)
    assert_index_matches(server, expected)
    same = assert_stored_bytes(server, expected.instances, reference)
    assert same >= len(expected.instances) // 2  # storescu leaves most data sets alone
    assert "0 problem(s)" in server.cli("check").stdout

    # Re-sending everything changes nothing: same responses, counts, keys and bytes; files
    # of SOP Instance UIDs sent once are not even touched. (A UID sent several times with
    # different content is replaced on the way, to end with the same last content.)
    before = files_snapshot(server.data_dir)
    again, sent_again = send_everything("again")
    assert again.responses == run.responses
    assert sent_again == sent
    echo_ok(server)
    assert_index_matches(server, expected)
    after = files_snapshot(server.data_dir)
    assert {k: v[1:] for k, v in after.items()} == {k: v[1:] for k, v in before.items()}
    sent_once = {uid for uid, n in Counter(i.sop_instance_uid for i in accepted).items()
                 if n == 1}
    for key, (mtime, _size, _digest) in before.items():
        if any(f"/{uid}." in key for uid in sent_once):
            assert after[key][0] == mtime, f"{key} was rewritten"
    for aet in ("STORESCU", "SENDSCU"):
        last = wait_for_summaries(server, 2, aet)[-1]
        assert last["stored"] == 0, (aet, last)
    assert_stored_bytes(server, expected.instances, reference)


# -- (b) a generated multi-patient corpus -----------------------------------------------------


def test_storescu_synthetic_corpus(pacsnode_server, tmp_path):
    files = generate_corpus(tmp_path / "corpus", patients=3, studies_per_patient=2,
                            series_per_study=2, instances_per_series=4, seed=20240611)
    infos = [describe(p) for p in files]
    server = pacsnode_server()
    run = run_storescu(dcmtk("storescu"), DCMTK_ENV, server.port, files, tmp_path / "scu",
                       called_aet=server.aet)
    assert run.returncode == 0, run.output[-3000:]
    assert run.responses == {p: "Success" for p in files}
    echo_ok(server)

    expected = expected_index(infos)
    assert expected.counts() == {"patients": 3, "studies": 6, "series": 12, "instances": 48}
    assert_index_matches(server, expected)
    # pydicom-written files go out unchanged: compare with the files themselves
    assert_stored_bytes(server, expected.instances, None, sending_aet="STORESCU")
    assert list((server.data_dir / "files" / "tmp").iterdir()) == []  # no spool file left
    tree = ls_json(server)
    names = {p["patient_id"]: p["patient_name"] for p in tree}
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert names[ds.PatientID] == str(ds.PatientName)
    assert wait_for_summaries(server, 1) == [Counter({"stored": 48})]

    before = files_snapshot(server.data_dir)
    again = run_storescu(dcmtk("storescu"), DCMTK_ENV, server.port, files,
                         tmp_path / "scu-again", called_aet=server.aet)
    assert again.returncode == 0 and again.responses == run.responses
    assert files_snapshot(server.data_dir) == before
    assert wait_for_summaries(server, 2)[-1] == Counter({"already present": 48})
    assert_index_matches(server, expected)


def test_parallel_storescu_associations(pacsnode_server, tmp_path):
    """Four storescu processes at once: each sends one shared series (all four race on the
    same SOP Instance UIDs) and then its own quarter of the corpus."""
    files = generate_corpus(tmp_path / "corpus", patients=4, studies_per_patient=2,
                            series_per_study=2, instances_per_series=8, seed=77)
    shared, rest = files[:8], files[8:]
    shares = [shared + rest[i::4] for i in range(4)]
    infos = [describe(p) for p in files]
    config = tmp_path / "storescu.cfg"
    profile = write_storescu_config(config, {i.pair for i in infos})
    server = pacsnode_server()
    procs = [subprocess.Popen(storescu_command(dcmtk("storescu"), server.port, share, config,
                                               profile, called_aet=server.aet,
                                               calling_aet=f"STORESCU{n}"),
                              env=DCMTK_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
             for n, share in enumerate(shares, 1)]
    for proc, share in zip(procs, shares, strict=True):
        output, _ = proc.communicate(timeout=300)
        responses, errors = parse_storescu_output(output)
        assert proc.returncode == 0, output[-3000:]
        assert responses == {p: "Success" for p in share}, errors
    echo_ok(server)

    summaries = [c for n in range(1, 5) for c in wait_for_summaries(server, 1, f"STORESCU{n}")]
    total = sum(summaries, Counter())
    # every instance stored exactly once; the losers of each race found it already present
    assert total == Counter({"stored": len(files), "already present": 3 * len(shared)})
    log = server.log()
    # the associations overlapped: several were established before the first one ended
    first_end = re.search(r"association from STORESCU\d\S* (released|aborted)", log)
    assert first_end is not None
    established = re.findall(r"association from STORESCU\d\S* to \S+ established",
                             log[:first_end.start()])
    assert len(established) >= 2, log

    expected = expected_index(infos)
    assert expected.counts() == {"patients": 4, "studies": 8, "series": 16, "instances": 128}
    assert_index_matches(server, expected)
    assert_stored_bytes(server, expected.instances, None)
    stored = files_snapshot(server.data_dir)
    assert len(stored) == len(files)  # one file per instance, none left over from the race
    assert "0 problem(s)" in server.cli("check").stdout
