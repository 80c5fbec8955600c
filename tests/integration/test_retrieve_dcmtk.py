"""C-MOVE and C-GET (PS3.4 C.4.2, C.4.3) from DCMTK's movescu and getscu against
``pacsnode serve``, on both index backends.

The archive is filled with DCMTK storescu (each file in its own transfer syntax): a
generated two-patient corpus (CT and MR studies, explicit VR little endian), a CT series
stored in implicit VR little endian, a 200-instance series (for C-CANCEL), two compressed
files from pydicom's bundled test data (RLE Lossless, JPEG Lossless SV1) and one in explicit
VR big endian (pydicom's, with UIDs of its own). The C-MOVE destinations are DCMTK storescp
processes in bit-preserving mode (``+B``: every data set written exactly as received),
declared as peers in a TOML file given to ``pacsnode serve --config``:

* ``DEST`` accepts every transfer syntax (``+xa``);
* ``IMPLONLY`` accepts implicit VR little endian only (``+xi``);
* ``CTONLY`` accepts CT Image Storage only (an ``-xf`` profile): MR sub-operations fail;
* ``DEAD`` is a port nobody listens on.

What must hold: exactly the instances the identifier selects arrive; a data set sent in its
stored transfer syntax is byte-identical to the stored one (file meta aside); a compressed
or big endian instance sent to an uncompressed-only destination arrives decompressed (or
byte-swapped) with the same pixels, attributes and SOP Instance UID; the responses carry
the right statuses and sub-operation counts, and the Failed SOP Instance UID List exactly
when something failed; refusals leave the server serving.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLosslessSV1,
    RLELossless,
)

from pacsnode import Archive
from pacsnode.synthetic import generate_corpus, generate_ct_series
from tests.conftest import DCMTK_ENV, PacsnodeServer, dcmtk, free_port
from tests.integration.corpus import (
    dataset_bytes,
    pydicom_test_root,
    run_storescu,
)
from tests.storescp import StorescpReceiver

pytestmark = pytest.mark.dcmtk

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
PIXEL_DATA = 0x7FE00010
COMPRESSED_FILES = ("MR_small_RLE.dcm", "SC_rgb_jpeg_gdcm.dcm")  # bundled with pydicom
BIG_ENDIAN_FILE = "MR_small_bigendian.dcm"  # bundled too; same UIDs as MR_small_RLE.dcm
MODEL_FLAGS = {"study": "-S", "patient": "-P"}
# A storescp -xf profile accepting CT Image Storage only, uncompressed.
CT_ONLY_PROFILE = f"""[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = {ExplicitVRLittleEndian}
TransferSyntax2 = {ImplicitVRLittleEndian}

[[PresentationContexts]]
[CTOnly]
PresentationContext1 = {CT_IMAGE}\\Uncompressed

[[Profiles]]
[CT]
PresentationContexts = CTOnly
"""
ERROR_COMMENT = re.compile(r"\(0000,0902\) LO \[(.*)\]")


# -- DCMTK storescp as a move destination ------------------------------------------------


Receiver = StorescpReceiver


# -- movescu / getscu and their responses --------------------------------------------------


@dataclass
class Response:
    """One C-MOVE-RSP or C-GET-RSP as DCMTK's debug log shows it."""

    status: int
    counts: dict[str, int | None]  # remaining/completed/failed/warning; None: absent
    has_identifier: bool
    failed_uids: list[str] = field(default_factory=list)
    error_comment: str = ""


@dataclass
class RetrieveRun:
    returncode: int
    output: str
    responses: list[Response]

    @property
    def final(self) -> Response:
        assert self.responses, self.output[-3000:]
        return self.responses[-1]

    @property
    def pending(self) -> list[Response]:
        return [r for r in self.responses if r.status == 0xFF00]


_BLOCK = re.compile(r"D: =+ INCOMING DIMSE MESSAGE =+\n(.*?)D: =+ END DIMSE MESSAGE =+\n"
                    r"(.*?)(?=D: =+ INCOMING DIMSE MESSAGE|\Z)", re.S)


def parse_responses(output: str, kind: str) -> list[Response]:
    """The C-MOVE-RSP / C-GET-RSP messages in a ``-d`` log, in order, with the Failed SOP
    Instance UID List and Error Comment DCMTK prints after each."""
    out = []
    for m in _BLOCK.finditer(output):
        fields = dict(re.findall(r"D: ([A-Za-z ]+?)\s*: (.*)", m.group(1)))
        if fields.get("Message Type") != f"{kind} RSP":
            continue
        counts: dict[str, int | None] = {}
        for name in ("Remaining", "Completed", "Failed", "Warning"):
            value = fields.get(f"{name} Suboperations", "none")
            counts[name.lower()] = None if value == "none" else int(value)
        after = m.group(2)
        failed = re.search(r"\(0008,0058\) UI \[(.*?)\]", after)
        comment = ERROR_COMMENT.search(after)
        out.append(Response(
            status=int(fields["DIMSE Status"].split(":")[0], 16), counts=counts,
            has_identifier=fields.get("Data Set", "none") != "none",
            failed_uids=failed.group(1).split("\\") if failed else [],
            error_comment=comment.group(1) if comment else ""))
    return out


def keys_args(keys: Sequence[tuple[str, str]]) -> list[str]:
    return [arg for key, value in keys for arg in ("-k", f"{key}={value}")]


def movescu(server: PacsnodeServer, model: str, destination: str,
            keys: Sequence[tuple[str, str]], *extra: str) -> RetrieveRun:
    cmd = [dcmtk("movescu"), "-d", MODEL_FLAGS[model], "-aet", "MOVESCU", "-aec", server.aet,
           "-aem", destination, *extra, *keys_args(keys), "127.0.0.1", str(server.port)]
    proc = subprocess.run(cmd, env=DCMTK_ENV, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    return RetrieveRun(proc.returncode, output, parse_responses(output, "C-MOVE"))


def getscu(server: PacsnodeServer, model: str, keys: Sequence[tuple[str, str]],
           out_dir: Path, *extra: str) -> tuple[RetrieveRun, dict[str, Path]]:
    out_dir.mkdir(parents=True)
    cmd = [dcmtk("getscu"), "-d", MODEL_FLAGS[model], "-aet", "GETSCU", "-aec", server.aet,
           "+B", "-od", str(out_dir), *extra, *keys_args(keys), "127.0.0.1",
           str(server.port)]
    proc = subprocess.run(cmd, env=DCMTK_ENV, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    received = {str(pydicom.filereader.read_file_meta_info(p).MediaStorageSOPInstanceUID): p
                for p in sorted(out_dir.iterdir())}
    return RetrieveRun(proc.returncode, output, parse_responses(output, "C-GET")), received


def echo_ok(server: PacsnodeServer) -> None:
    assert server.alive(), f"pacsnode serve died:\n{server.log()[-3000:]}"
    echo = subprocess.run([dcmtk("echoscu"), "-aec", server.aet, "127.0.0.1",
                           str(server.port)], env=DCMTK_ENV, capture_output=True, text=True,
                          timeout=30)
    assert echo.returncode == 0, echo.stdout + echo.stderr


# -- the node under test -------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """An instance as pacsnode stored it."""

    uid: str
    patient_id: str
    study: str
    series: str
    sop_class: str
    transfer_syntax: str
    stored: Path  # pacsnode's file
    original: Path  # the file storescu sent


@dataclass
class Node:
    server: PacsnodeServer
    receivers: dict[str, Receiver]
    instances: dict[str, Instance]
    corpus: list[str]  # the generated two-patient corpus (explicit VR LE), in order
    implicit_study: str  # a CT study stored in implicit VR little endian
    big_series: str  # 200 instances
    non_native: dict[str, str]  # compressed and big endian: pydicom file name -> SOP UID

    def select(self, **where: str) -> set[str]:
        return {uid for uid, i in self.instances.items()
                if all(getattr(i, k) == v for k, v in where.items())}


def _with_new_uids(source: Path, target: Path) -> Path:
    """A copy of ``source`` in its own encoding, as another instance of another study."""
    ds = pydicom.dcmread(source)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = \
        "2.25.311309478526046305911286633870339434717"
    ds.StudyInstanceUID = "2.25.107214036233305622345327300893916911011"
    ds.SeriesInstanceUID = "2.25.206474101404066880117226617426622839745"
    target.parent.mkdir(parents=True)
    ds.save_as(target, enforce_file_format=True)
    return target


def _implicit_copies(files: list[Path], out_dir: Path) -> list[Path]:
    """The files re-encoded in implicit VR little endian (pydicom)."""
    out_dir.mkdir(parents=True)
    copies = []
    for path in files:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        copy = out_dir / path.name
        ds.save_as(copy, enforce_file_format=True)
        copies.append(copy)
    return copies


@pytest.fixture
def node(pacsnode_server, tmp_path: Path) -> Iterator[Node]:
    receivers: dict[str, Receiver] = {}
    try:
        receivers["DEST"] = Receiver(tmp_path / "dest", "DEST", "+xa")
        receivers["IMPLONLY"] = Receiver(tmp_path / "implonly", "IMPLONLY", "+xi")
        ct_only = tmp_path / "ctonly.cfg"
        ct_only.write_text(CT_ONLY_PROFILE)
        receivers["CTONLY"] = Receiver(tmp_path / "ctonly", "CTONLY", "-xf", str(ct_only),
                                       "CT")
        peers = {name: (r.aet, r.port) for name, r in receivers.items()}
        peers["DEAD"] = ("DEAD", free_port())
        config = tmp_path / "pacsnode.toml"
        config.write_text("".join(
            f'[peers.{name}]\naet = "{aet}"\nhost = "127.0.0.1"\nport = {port}\n\n'
            for name, (aet, port) in peers.items()))
        server = pacsnode_server("--config", str(config))

        corpus = generate_corpus(tmp_path / "corpus", patients=2, studies_per_patient=2,
                                 series_per_study=2, instances_per_series=3, rows=16,
                                 columns=16, seed=4711)
        implicit = _implicit_copies(
            generate_ct_series(tmp_path / "ct-explicit", 4, rows=16, columns=16, seed=5),
            tmp_path / "ct-implicit")
        big = generate_ct_series(tmp_path / "big", 200, rows=8, columns=8, seed=6)
        non_native = [pydicom_test_root() / name for name in COMPRESSED_FILES]
        non_native.append(_with_new_uids(pydicom_test_root() / BIG_ENDIAN_FILE,
                                         tmp_path / "be" / BIG_ENDIAN_FILE))
        files = corpus + implicit + big + non_native
        run = run_storescu(dcmtk("storescu"), DCMTK_ENV, server.port, files,
                           tmp_path / "scu", called_aet=server.aet)
        assert run.returncode == 0 and run.responses == {p: "Success" for p in files}, \
            run.output[-3000:]

        instances: dict[str, Instance] = {}
        with Archive.open(server.data_dir, db=server.db) as archive:
            for path in files:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
                uid = str(ds.SOPInstanceUID)
                found = archive.find(uid)
                assert found is not None, path
                instances[uid] = Instance(
                    uid, str(ds.PatientID), str(ds.StudyInstanceUID),
                    str(ds.SeriesInstanceUID), str(ds.SOPClassUID),
                    str(found.columns["transfer_syntax_uid"]),
                    archive.store.path_of(found.columns["storage_key"]), path)
        assert len(instances) == len(files)
        uid_of = {i.original: uid for uid, i in instances.items()}
        yield Node(server, receivers, instances, corpus=[uid_of[p] for p in corpus],
                   implicit_study=instances[uid_of[implicit[0]]].study,
                   big_series=instances[uid_of[big[0]]].series,
                   non_native={p.name: uid_of[p] for p in non_native})
    finally:
        for receiver in receivers.values():
            receiver.stop()


def assert_byte_identical(node: Node, received: dict[str, Path]) -> None:
    for uid, path in received.items():
        stored = node.instances[uid].stored
        meta = pydicom.filereader.read_file_meta_info(path)
        assert meta.TransferSyntaxUID == node.instances[uid].transfer_syntax, uid
        assert dataset_bytes(path) == dataset_bytes(stored), \
            f"{uid}: the received data set differs from the stored one"


def assert_success(run: RetrieveRun, count: int) -> None:
    """Success with ``count`` completed sub-operations, a Pending response with the counts
    after each sub-operation but the last, no Failed SOP Instance UID List anywhere."""
    final = run.final
    assert final.status == 0x0000, run.output[-3000:]
    assert final.counts == {"remaining": None, "completed": count, "failed": 0,
                            "warning": 0}
    assert not final.has_identifier
    assert [(r.counts["remaining"], r.counts["completed"]) for r in run.pending] == \
        [(count - n, n) for n in range(1, count)]
    assert all(r.counts["failed"] == 0 and r.counts["warning"] == 0 and not r.has_identifier
               for r in run.pending)


# -- C-MOVE --------------------------------------------------------------------------------


def test_move_every_level_byte_identical(node: Node) -> None:
    dest = node.receivers["DEST"]
    first = node.instances[node.corpus[0]]
    other = node.instances[node.corpus[-1]]
    assert first.patient_id != other.patient_id and first.study != other.study
    series_uids = sorted(node.select(series=first.series))
    cases: list[tuple[str, list[tuple[str, str]], set[str]]] = [
        ("study", [("QueryRetrieveLevel", "STUDY"), ("StudyInstanceUID", first.study)],
         node.select(study=first.study)),
        ("study", [("QueryRetrieveLevel", "STUDY"),  # a list of UIDs
                   ("StudyInstanceUID", f"{first.study}\\{other.study}")],
         node.select(study=first.study) | node.select(study=other.study)),
        ("study", [("QueryRetrieveLevel", "SERIES"), ("StudyInstanceUID", first.study),
                   ("SeriesInstanceUID", first.series)], node.select(series=first.series)),
        ("study", [("QueryRetrieveLevel", "IMAGE"), ("StudyInstanceUID", first.study),
                   ("SeriesInstanceUID", first.series),
                   ("SOPInstanceUID", "\\".join(series_uids[:2]))], set(series_uids[:2])),
        ("patient", [("QueryRetrieveLevel", "PATIENT"), ("PatientID", first.patient_id)],
         node.select(patient_id=first.patient_id)),
        ("patient", [("QueryRetrieveLevel", "STUDY"), ("PatientID", other.patient_id),
                     ("StudyInstanceUID", other.study)], node.select(study=other.study)),
        ("patient", [("QueryRetrieveLevel", "SERIES"), ("PatientID", first.patient_id),
                     ("StudyInstanceUID", first.study), ("SeriesInstanceUID", first.series)],
         node.select(series=first.series)),
        ("patient", [("QueryRetrieveLevel", "IMAGE"), ("PatientID", first.patient_id),
                     ("StudyInstanceUID", first.study), ("SeriesInstanceUID", first.series),
                     ("SOPInstanceUID", first.uid)], {first.uid}),
        # a key of another patient: nothing matches
        ("patient", [("QueryRetrieveLevel", "STUDY"), ("PatientID", other.patient_id),
                     ("StudyInstanceUID", first.study)], set()),
        ("study", [("QueryRetrieveLevel", "STUDY"), ("StudyInstanceUID", "1.2.3.4.5.6")],
         set()),
    ]
    for model, keys, expected in cases:
        run = movescu(node.server, model, "DEST", keys)
        assert run.returncode == 0, run.output[-3000:]
        received = dest.take()
        assert set(received) == expected, (model, keys)
        assert_byte_identical(node, received)
        assert_success(run, len(expected))
    log = node.server.log()
    assert len(re.findall(r"C-MOVE (?:Study|Patient) Root \w+ from MOVESCU@\S+ to "
                          r"DEST@127\.0\.0\.1:\d+: \d+ completed", log)) == len(cases)
    echo_ok(node.server)


def test_move_refusals_failures_and_cancel(node: Node) -> None:
    study = node.instances[node.corpus[0]].study
    # unknown destination: 0xA801, logged with the reason; the node keeps serving
    run = movescu(node.server, "study", "NOWHERE", [("QueryRetrieveLevel", "STUDY"),
                                                    ("StudyInstanceUID", study)])
    assert run.final.status == 0xA801, run.output[-3000:]
    assert "Move Destination Unknown" in run.output or "MoveDestinationUnknown" in run.output
    assert "'NOWHERE' is not a known peer" in node.server.log()
    echo_ok(node.server)

    # a peer added to the index while the server runs is a move destination at once
    dest = node.receivers["DEST"]
    added = subprocess.run([sys.executable, "-m", "pacsnode", "peers", "add",
                            *node.server.archive_args(), "LATER", "INDEXED", "127.0.0.1",
                            str(dest.port)], capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stdout + added.stderr
    run = movescu(node.server, "study", "INDEXED", [("QueryRetrieveLevel", "STUDY"),
                                                    ("StudyInstanceUID", study)])
    assert_success(run, len(node.select(study=study)))
    assert set(dest.take()) == node.select(study=study)

    # a level the model lacks, a missing unique key, an unknown level: 0xA900
    for model, keys in [("study", [("QueryRetrieveLevel", "PATIENT"), ("PatientID", "X")]),
                        ("study", [("QueryRetrieveLevel", "SERIES"),
                                   ("StudyInstanceUID", study)]),
                        ("patient", [("QueryRetrieveLevel", "FRAME"),
                                     ("StudyInstanceUID", study)])]:
        run = movescu(node.server, model, "DEST", keys)
        assert run.final.status == 0xA900, run.output[-3000:]
        assert run.final.error_comment, run.output[-3000:]
        assert not run.pending
    assert node.receivers["DEST"].take() == {}

    # a destination nobody listens on: every sub-operation fails, 0xA702, with the list
    expected = node.select(study=study)
    run = movescu(node.server, "study", "DEAD", [("QueryRetrieveLevel", "STUDY"),
                                                 ("StudyInstanceUID", study)])
    assert run.final.status == 0xA702, run.output[-3000:]
    assert run.final.counts == {"remaining": None, "completed": 0, "failed": len(expected),
                                "warning": 0}
    assert set(run.final.failed_uids) == expected
    assert not run.pending

    # a destination accepting CT only: the MR instances fail, 0xB000, the list only at the end
    patient = node.instances[node.corpus[0]].patient_id
    uids = node.select(patient_id=patient)
    ct, mr = node.select(patient_id=patient, sop_class=CT_IMAGE), \
        node.select(patient_id=patient, sop_class=MR_IMAGE)
    assert ct and mr and ct | mr == uids
    run = movescu(node.server, "patient", "CTONLY", [("QueryRetrieveLevel", "PATIENT"),
                                                     ("PatientID", patient)])
    assert run.final.status == 0xB000, run.output[-3000:]
    assert run.final.counts == {"remaining": None, "completed": len(ct), "failed": len(mr),
                                "warning": 0}
    assert set(run.final.failed_uids) == mr
    assert len(run.pending) == len(uids) - 1
    assert not any(r.has_identifier for r in run.pending)
    received = node.receivers["CTONLY"].take()
    assert set(received) == ct
    assert_byte_identical(node, received)

    # C-CANCEL after the first Pending response: 0xFE00 with the counts, sending stopped
    big = node.select(series=node.big_series)
    run = movescu(node.server, "study", "DEST", [
        ("QueryRetrieveLevel", "SERIES"), ("StudyInstanceUID", node.instances[
            next(iter(big))].study), ("SeriesInstanceUID", node.big_series)], "--cancel", "1")
    final = run.final
    assert final.status == 0xFE00, run.output[-3000:]
    done = final.counts["completed"]
    assert done is not None and 1 <= done < len(big)
    assert final.counts["remaining"] == len(big) - done
    assert final.counts["failed"] == 0 and not final.has_identifier
    received = node.receivers["DEST"].take()
    assert len(received) == done and set(received) <= big
    assert_byte_identical(node, received)
    echo_ok(node.server)


def test_compressed_and_big_endian_to_an_uncompressed_only_destination(node: Node) -> None:
    uids = set(node.non_native.values())
    stored = {node.instances[u].transfer_syntax for u in uids}
    assert stored == {RLELossless, JPEGLosslessSV1, ExplicitVRBigEndian}
    keys = [("QueryRetrieveLevel", "STUDY"),
            ("StudyInstanceUID", "\\".join(sorted({node.instances[u].study for u in uids})))]

    # accepted as stored: the stored data set itself
    run = movescu(node.server, "study", "DEST", keys)
    received = node.receivers["DEST"].take()
    assert set(received) == uids
    assert_byte_identical(node, received)
    assert_success(run, len(uids))

    # implicit VR little endian only: decompressed or byte-swapped, same instance and pixels
    run = movescu(node.server, "study", "IMPLONLY", keys)
    assert_success(run, len(uids))
    received = node.receivers["IMPLONLY"].take()
    assert set(received) == uids
    for name, uid in node.non_native.items():
        got = pydicom.dcmread(received[uid])
        original = pydicom.dcmread(node.instances[uid].original)
        assert got.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
        assert got.SOPInstanceUID == original.SOPInstanceUID
        assert got.SOPClassUID == original.SOPClassUID
        assert got.PatientName == original.PatientName
        assert got.Rows == original.Rows and got.Columns == original.Columns
        assert np.array_equal(got.pixel_array, original.pixel_array), name
        if name == BIG_ENDIAN_FILE:  # nothing but the encoding changes
            assert [(e.tag, e.value) for e in got if e.tag != PIXEL_DATA] == \
                [(e.tag, e.value) for e in original if e.tag != PIXEL_DATA]

    # an explicit VR little endian instance to the same destination: converted, not altered
    uid = node.corpus[0]
    inst = node.instances[uid]
    run = movescu(node.server, "study", "IMPLONLY", [
        ("QueryRetrieveLevel", "IMAGE"), ("StudyInstanceUID", inst.study),
        ("SeriesInstanceUID", inst.series), ("SOPInstanceUID", uid)])
    assert_success(run, 1)
    got = pydicom.dcmread(node.receivers["IMPLONLY"].take()[uid])
    want = pydicom.dcmread(inst.stored)
    assert got.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert [(e.tag, e.value) for e in got] == [(e.tag, e.value) for e in want]
    assert "converted" in node.server.log()


# -- C-GET ---------------------------------------------------------------------------------


def test_get_study_byte_identical(node: Node, tmp_path: Path) -> None:
    # getscu proposes Explicit VR Little Endian first, and pacsnode accepts the requestor's
    # preference: a study stored in it arrives byte for byte
    study = node.instances[node.corpus[0]].study
    expected = node.select(study=study)
    assert {node.instances[u].transfer_syntax for u in expected} == {ExplicitVRLittleEndian}
    run, received = getscu(node.server, "study", [("QueryRetrieveLevel", "STUDY"),
                                                  ("StudyInstanceUID", study)],
                           tmp_path / "get-study")
    assert run.returncode == 0, run.output[-3000:]
    assert set(received) == expected
    assert_byte_identical(node, received)
    assert_success(run, len(expected))

    # a whole patient (Patient Root): instances stored in a transfer syntax the requestor's
    # contexts lack arrive converted, otherwise as stored; the pixels are the same
    patient = node.instances[node.corpus[0]].patient_id
    expected = node.select(patient_id=patient)
    run, received = getscu(node.server, "patient", [("QueryRetrieveLevel", "PATIENT"),
                                                    ("PatientID", patient)],
                           tmp_path / "get-patient")
    assert set(received) == expected
    assert_success(run, len(expected))
    for uid, path in received.items():
        inst = node.instances[uid]
        got = pydicom.dcmread(path)
        if got.file_meta.TransferSyntaxUID == inst.transfer_syntax:
            assert dataset_bytes(path) == dataset_bytes(inst.stored)
        else:
            want = pydicom.dcmread(inst.stored)
            assert [(e.tag, e.value) for e in got] == [(e.tag, e.value) for e in want]

    # compressed instances to getscu (which proposes uncompressed syntaxes only)
    uid = node.non_native["MR_small_RLE.dcm"]
    inst = node.instances[uid]
    run, received = getscu(node.server, "study", [("QueryRetrieveLevel", "SERIES"),
                                                  ("StudyInstanceUID", inst.study),
                                                  ("SeriesInstanceUID", inst.series)],
                           tmp_path / "get-rle")
    assert set(received) == {uid}
    assert_success(run, 1)
    got = pydicom.dcmread(received[uid])
    assert not got.file_meta.TransferSyntaxUID.is_compressed
    original = pydicom.dcmread(pydicom_test_root() / "MR_small_RLE.dcm")
    assert np.array_equal(got.pixel_array, original.pixel_array)

    # nothing matches: Success, no sub-operations
    run, received = getscu(node.server, "study", [("QueryRetrieveLevel", "STUDY"),
                                                  ("StudyInstanceUID", "1.2.3.4.5.6")],
                           tmp_path / "get-none")
    assert received == {}
    assert_success(run, 0)
    assert len(re.findall(r"C-GET (?:Study|Patient) Root \w+ from GETSCU@", node.server.log())
               ) == 4
    echo_ok(node.server)
