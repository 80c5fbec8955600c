"""The ``pacsnode`` command line against real archives (both index backends): import, send
(to pacsnode and to DCMTK's storescp), ls, show, delete, check and check --repair."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from pacsnode import Archive
from pacsnode.synthetic import generate_corpus
from tests.conftest import DCMTK_ENV, PacsnodeServer, dcmtk, free_port
from tests.integration.corpus import (
    Storescp,
    dataset_bytes,
    describe,
    pydicom_data_root,
    pydicom_test_root,
)

# Real-world files with distinct SOP Instance UIDs, one per transfer syntax family.
SEND_FILES = {
    "CT_small.dcm": "explicit VR little endian",
    "MR_small_bigendian.dcm": "explicit VR big endian",
    "gdcm-US-ALOKA-16.dcm": "implicit VR little endian, ultrasound (pydicom-data)",
    "JPEG2000.dcm": "JPEG 2000",
    "SC_rgb_jpeg_dcmtk.dcm": "JPEG baseline, colour",
    "image_dfl.dcm": "deflated explicit VR little endian",
    "emri_small_RLE.dcm": "RLE lossless, multi-frame (pydicom-data)",
    "JPEG-LL.dcm": "JPEG lossless (pydicom-data)",
    "waveform_ecg.dcm": "12-lead ECG waveform (pydicom-data)",
}
# image_dfl.dcm's deflated data set has an odd length (PS3.5 A.5 wants a padding byte);
# DCMTK's storescp aborts the association on it ("Odd Fragment Length").
NOT_FOR_DCMTK = {"image_dfl.dcm"}


@pytest.fixture
def archive(tmp_path: Path, db_url: str | None) -> PacsnodeServer:
    """An archive (data directory + the test's index backend) to run commands on; no
    server is started."""
    return PacsnodeServer(data_dir=tmp_path / "data", db=db_url, port=0)


def send_files(tmp_path: Path) -> list[Path]:
    """Copies of SEND_FILES in a folder of their own."""
    out = tmp_path / "send"
    out.mkdir()
    data_root = pydicom_data_root()
    assert data_root is not None, "pydicom-data is not installed (pip install -e '.[test]')"
    for name in SEND_FILES:
        for root in (pydicom_test_root(), data_root):
            if (root / name).exists():
                shutil.copy(root / name, out / name)
                break
        else:
            raise AssertionError(f"{name} is in neither pydicom's nor pydicom-data's files")
    paths = sorted(out.iterdir())
    for path in paths:  # the file meta and the data set agree on the instance
        meta = pydicom.filereader.read_file_meta_info(path)
        assert meta.MediaStorageSOPInstanceUID == describe(path).sop_instance_uid, path.name
    return paths


def ls_json(archive: PacsnodeServer) -> list[dict]:
    return json.loads(archive.cli("ls", "--json").stdout)


def show(archive: PacsnodeServer, uid: str) -> dict:
    return json.loads(archive.cli("show", uid, "--json").stdout)


def node(archive: PacsnodeServer, uid: str) -> dict | None:
    """The index columns of a patient (by Patient ID), study, series or instance, through
    the public Python API (cheaper than a ``pacsnode show`` process per look-up)."""
    with Archive.open(archive.data_dir, db=archive.db) as arc:
        found = arc.find(uid)
    return None if found is None else {"level": found.level, **found.columns}


def counts(archive: PacsnodeServer) -> tuple[int, int, int, int]:
    with Archive.open(archive.data_dir, db=archive.db) as arc:
        c = arc.counts()
    return c["patients"], c["studies"], c["series"], c["instances"]


def stored_files(archive: PacsnodeServer) -> set[str]:
    root = archive.data_dir / "files"
    return {p.relative_to(root).as_posix() for p in root.rglob("*.dcm")
            if p.relative_to(root).parts[0] != "tmp"}


def assert_archived_as_sent(archive: PacsnodeServer, files: list[Path]) -> None:
    """Each file's instance is in the archive with the file's data set, byte for byte, in
    the file's transfer syntax."""
    with Archive.open(archive.data_dir, db=archive.db) as arc:
        for path in files:
            info = describe(path)
            node = arc.find(info.sop_instance_uid)
            assert node is not None, path.name
            assert node.columns["transfer_syntax_uid"] == info.transfer_syntax, path.name
            with arc.open_instance(info.sop_instance_uid) as fh:
                stored = fh.read()
            assert stored[node.columns["data_offset"]:] == dataset_bytes(path), path.name


# -- import ----------------------------------------------------------------------------------


def test_import_folder_with_dicom_and_other_files(archive, tmp_path):
    folder = tmp_path / "incoming"
    dicom = generate_corpus(folder / "dicom", patients=1, studies_per_patient=1,
                            series_per_study=2, instances_per_series=3, seed=11)
    shutil.copy(dicom[0], folder / "copy-of-first.dcm")  # same instance again: present
    (folder / "notes.txt").write_text("not DICOM at all\n")
    other = generate_corpus(tmp_path / "other", patients=1, studies_per_patient=1,
                            series_per_study=1, instances_per_series=1, seed=12)[0]
    whole = other.read_bytes()
    (folder / "truncated.dcm").write_bytes(whole[:len(whole) - 1000])

    result = archive.cli("import", str(folder))
    lines = result.stdout.splitlines()
    assert lines[-1] == "9 files: 6 stored, 1 already present, 2 rejected", result.stdout
    assert any(line.startswith(f"rejected {folder / 'notes.txt'}: ") for line in lines)
    assert any(line.startswith(f"rejected {folder / 'truncated.dcm'}: ") and "truncated" in line
               for line in lines), result.stdout
    assert counts(archive) == (1, 1, 2, 6)
    assert_archived_as_sent(archive, dicom)
    assert node(archive, describe(other).sop_instance_uid) is None

    before = {k: (archive.data_dir / "files" / k).stat().st_mtime_ns
              for k in stored_files(archive)}
    again = archive.cli("import", str(folder))
    assert again.stdout.splitlines()[-1] == "9 files: 0 stored, 7 already present, 2 rejected"
    assert {k: (archive.data_dir / "files" / k).stat().st_mtime_ns
            for k in stored_files(archive)} == before
    assert "0 problem(s)" in archive.cli("check").stdout


# -- send --------------------------------------------------------------------------------------


@pytest.mark.dcmtk
def test_send_to_pacsnode(pacsnode_server, tmp_path):
    files = send_files(tmp_path)
    synthetic = generate_corpus(tmp_path / "send" / "synthetic", patients=2,
                                studies_per_patient=1, series_per_study=1,
                                instances_per_series=2, seed=13)
    server = pacsnode_server()
    result = server.cli("send", "127.0.0.1", str(server.port), str(tmp_path / "send"),
                        "-c", server.aet, "--aet", "CLITEST")
    total = len(files) + len(synthetic)
    assert result.stdout.splitlines()[-1] == f"sent {total}, failed 0 of {total} files"
    for path in [*files, *synthetic]:
        assert f"0x0000 {path}" in result.stdout
    assert_archived_as_sent(server, [*files, *synthetic])
    assert re.search(rf"association from CLITEST@\S+ released: {total} stored", server.log())
    # as many patients as the files have (Patient ID + issuer)
    patients = {(describe(p).patient_id, describe(p).issuer_of_patient_id)
                for p in [*files, *synthetic]}
    assert counts(server)[0] == len(patients)
    assert counts(server)[3] == total

    # a file that is not DICOM and a DICOMDIR (a SOP class no C-STORE SCP takes): each
    # reported, the rest still sent, exit status 1
    (tmp_path / "notes.txt").write_text("not DICOM\n")
    dicomdir = pydicom_test_root() / "dicomdirtests" / "DICOMDIR"
    mixed = server.cli("send", "127.0.0.1", str(server.port), str(tmp_path / "notes.txt"),
                       str(dicomdir), str(files[0]), "-c", server.aet, check=False)
    assert mixed.returncode == 1, mixed.stdout + mixed.stderr
    assert "Traceback" not in mixed.stderr, mixed.stderr
    assert re.search(rf"^no status {re.escape(str(tmp_path / 'notes.txt'))}: not a DICOM file",
                     mixed.stdout, re.M), mixed.stdout
    assert re.search(rf"^no status {re.escape(str(dicomdir))}: .*presentation context",
                     mixed.stdout, re.M), mixed.stdout
    assert f"0x0000 {files[0]}" in mixed.stdout
    assert mixed.stdout.splitlines()[-1] == "sent 1, failed 2 of 3 files"
    assert counts(server)[3] == total
    assert server.alive()


@pytest.mark.dcmtk
def test_send_to_dcmtk_storescp(tmp_path):
    """pacsnode send to DCMTK's storescp (``+xa``: every transfer syntax; ``+B``: data sets
    written exactly as received, so that what arrived can be compared byte for byte)."""
    files = [p for p in send_files(tmp_path) if p.name not in NOT_FOR_DCMTK]
    files += generate_corpus(tmp_path / "send" / "synthetic", patients=1,
                             studies_per_patient=1, series_per_study=1,
                             instances_per_series=2, seed=14)
    scp = Storescp(dcmtk("storescp"), dcmtk("echoscu"), DCMTK_ENV, tmp_path / "received",
                   free_port())
    try:
        result = subprocess.run([sys.executable, "-m", "pacsnode", "send", "127.0.0.1",
                                 str(scp.port), *map(str, files), "-c", scp.aet],
                                capture_output=True, text=True, timeout=120)
    finally:
        scp.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == f"sent {len(files)}, failed 0 of {len(files)} files"
    received = scp.received()
    assert len(received) == len(files)
    for path in files:
        info = describe(path)
        got = received[info.sop_instance_uid]
        meta = pydicom.filereader.read_file_meta_info(got)
        assert meta.TransferSyntaxUID == info.transfer_syntax, path.name
        assert dataset_bytes(got) == dataset_bytes(path), path.name


# -- ls, show, delete --------------------------------------------------------------------------


def test_ls_show_delete(archive, tmp_path):
    files = generate_corpus(tmp_path / "corpus", patients=2, studies_per_patient=2,
                            series_per_study=2, instances_per_series=2, seed=15)
    archive.cli("import", str(tmp_path / "corpus"))
    infos = [describe(p) for p in files]
    text = archive.cli("ls").stdout
    assert text.splitlines()[-1] == "2 patients, 4 studies, 8 series, 16 instances"
    tree = ls_json(archive)
    assert sorted(p["patient_id"] for p in tree) == sorted({i.patient_id for i in infos})
    for p in tree:
        assert (p["num_studies"], p["num_series"], p["num_instances"]) == (2, 4, 8)
        assert f"{p['patient_id']}  {p['patient_name']}" in text
        for s in p["studies"]:
            mine = [i for i in infos if i.study_instance_uid == s["study_instance_uid"]]
            assert {i.patient_id for i in mine} == {p["patient_id"]}
            assert (s["num_series"], s["num_instances"]) == (2, 4)
            assert s["modalities_in_study"] == mine[0].modality
            assert f"{s['study_instance_uid']}  {s['study_description']}" in text
            for se in s["series"]:
                assert se["num_instances"] == 2
                assert se["series_instance_uid"] in text

    first = infos[0]
    inst = show(archive, first.sop_instance_uid)
    assert inst["level"] == "IMAGE" and inst["sop_class_uid"] == first.sop_class_uid
    assert inst["series_fk"] == node(archive, first.series_instance_uid)["pk"]
    assert inst["attributes"]["00080018"]["Value"] == [first.sop_instance_uid]
    plain = archive.cli("show", first.study_instance_uid).stdout
    assert plain.startswith(f"STUDY {first.study_instance_uid}\n")
    assert "num_series: 2" in plain and "num_instances: 4" in plain
    assert "StudyInstanceUID" in plain

    def file_of(uid: str) -> Path:
        found = node(archive, uid)
        assert found is not None
        return archive.data_dir / "files" / found["storage_key"]

    # an instance: counts above it go down, its file goes
    path = file_of(first.sop_instance_uid)
    assert path.exists()
    out = archive.cli("delete", first.sop_instance_uid).stdout
    assert out.strip() == f"deleted image {first.sop_instance_uid}: 1 instances"
    assert not path.exists()
    assert counts(archive) == (2, 4, 8, 15)
    assert node(archive, first.series_instance_uid)["num_instances"] == 1
    assert node(archive, first.study_instance_uid)["num_instances"] == 3
    assert node(archive, first.patient_id)["num_instances"] == 7

    # a series (the other series of the same study)
    other_series = next(i for i in infos if i.study_instance_uid == first.study_instance_uid
                        and i.series_instance_uid != first.series_instance_uid)
    paths = [file_of(i.sop_instance_uid) for i in infos
             if i.series_instance_uid == other_series.series_instance_uid]
    out = archive.cli("delete", other_series.series_instance_uid).stdout
    assert out.strip() == f"deleted series {other_series.series_instance_uid}: 2 instances"
    assert not any(p.exists() for p in paths)
    st = node(archive, first.study_instance_uid)
    assert (st["num_series"], st["num_instances"]) == (1, 1)
    pat = node(archive, first.patient_id)
    assert (pat["num_studies"], pat["num_series"], pat["num_instances"]) == (2, 3, 5)
    assert counts(archive) == (2, 4, 7, 13)

    # what is left of the study, and the other patient as a whole, in one command
    other_patient = next(i for i in infos if i.patient_id != first.patient_id)
    out = archive.cli("delete", first.study_instance_uid, other_patient.patient_id).stdout
    assert out.splitlines() == [
        f"deleted study {first.study_instance_uid}: 1 instances",
        f"deleted patient {other_patient.patient_id}: 8 instances"]
    pat = node(archive, first.patient_id)
    assert (pat["num_studies"], pat["num_series"], pat["num_instances"]) == (1, 2, 4)
    assert node(archive, other_patient.patient_id) is None
    assert counts(archive) == (1, 1, 2, 4)
    gone = archive.cli("delete", other_patient.patient_id, check=False)
    assert gone.returncode == 1 and "not in the archive" in gone.stderr

    # what is left on disk is exactly what is indexed
    remaining = [i for i in infos if i.patient_id == first.patient_id
                 and i.study_instance_uid != first.study_instance_uid]
    assert len(remaining) == 4
    assert stored_files(archive) == {node(archive, i.sop_instance_uid)["storage_key"]
                                     for i in remaining}
    assert "0 problem(s)" in archive.cli("check").stdout


# -- check, check --repair -------------------------------------------------------------------


def test_check_and_repair(archive, tmp_path):
    files = generate_corpus(tmp_path / "corpus", patients=1, studies_per_patient=1,
                            series_per_study=1, instances_per_series=4, seed=16)
    archive.cli("import", str(tmp_path / "corpus"))
    clean = archive.cli("check")
    assert clean.stdout.splitlines()[-1] == \
        "checked 4 indexed instances and 4 files: 0 problem(s)"
    files_root = archive.data_dir / "files"

    # a file deleted by hand
    gone = describe(files[1]).sop_instance_uid
    key = node(archive, gone)["storage_key"]
    (files_root / key).unlink()
    # orphan files: two instances stored by another archive, copied into this one's tree
    # (one at the key it had there, one under a name of its own), and a stray copy of a
    # file this archive indexes
    extra = generate_corpus(tmp_path / "extra", patients=1, studies_per_patient=1,
                            series_per_study=1, instances_per_series=2, seed=17)
    uid_a, uid_b = (describe(p).sop_instance_uid for p in extra)
    with Archive.open(tmp_path / "other") as other:
        assert all(other.ingest(p).ok for p in extra)
        key_a = other.find(uid_a).columns["storage_key"]
        key_b = other.find(uid_b).columns["storage_key"]
    (files_root / key_a).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / "other" / "files" / key_a, files_root / key_a)
    (files_root / "lost+found").mkdir()
    shutil.copy(tmp_path / "other" / "files" / key_b, files_root / "lost+found" / "b.dcm")
    kept = describe(files[0]).sop_instance_uid
    shutil.copy(files_root / node(archive, kept)["storage_key"],
                files_root / "lost+found" / "stray.dcm")

    found = archive.cli("check", check=False)
    assert found.returncode == 1
    assert f"missing file: {key} {gone}\n" in found.stdout
    assert f"orphan file: {key_a} {uid_a} (complete instance not in the index)\n" \
        in found.stdout
    assert f"orphan file: lost+found/b.dcm {uid_b} (complete instance not in the index)\n" \
        in found.stdout
    assert f"orphan file: lost+found/stray.dcm {kept} (superseded" in found.stdout
    assert found.stdout.splitlines()[-1] == \
        "checked 4 indexed instances and 6 files: 4 problem(s)"
    assert counts(archive) == (1, 1, 1, 4)  # check alone changes nothing
    assert (files_root / "lost+found" / "stray.dcm").exists()

    fixed = archive.cli("check", "--repair")  # every problem fixed: exit status 0
    assert f"missing file: {key} {gone} -> index row dropped" in fixed.stdout
    assert f"orphan file: {key_a} {uid_a} (complete instance not in the index) -> adopted" \
        in fixed.stdout
    assert f"orphan file: lost+found/b.dcm {uid_b} (complete instance not in the index) " \
        "-> adopted" in fixed.stdout
    assert re.search(r"^orphan file: lost\+found/stray.dcm .* -> removed$", fixed.stdout, re.M)
    assert node(archive, gone) is None
    assert counts(archive) == (2, 2, 2, 5)
    assert_archived_as_sent(archive, [files[0], files[2], files[3], *extra])
    final = archive.cli("check")
    assert final.stdout.splitlines()[-1] == \
        "checked 5 indexed instances and 5 files: 0 problem(s)"
    assert not (files_root / "lost+found" / "b.dcm").exists()
    assert not (files_root / "lost+found" / "stray.dcm").exists()
