"""``GET /api/studies/{uid}/archive`` (pacsnode.web.api_archive): a study as a streamed ZIP,
with or without a DICOMDIR.

The app holds only the archive router. Every entry is compared with the stored file (read
through the archive), the DICOMDIR is checked by loading the extracted File-set with
pydicom's FileSet (which follows the DICOMDIR's offsets and needs every referenced file),
ZIP structures are read back from the bytes, and memory is measured with tracemalloc while
the ASGI app is driven directly, the body going to disk as it arrives (TestClient and
httpx's ASGITransport hold the whole body in memory).
"""

from __future__ import annotations

import asyncio
import io
import random
import re
import struct
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet
from pydicom.uid import JPEG2000, RLELossless, generate_uid

from pacsnode.core.archive import Archive
from pacsnode.core.results import Outcome
from pacsnode.web import problems
from pacsnode.web.api_archive import router
from tests.unit.dicomdata import make_dataset, part10, stored_bytes

FILE_ID_COMPONENT = re.compile(r"^[A-Z0-9_]{1,8}$")  # PS3.10 8.2, 8.5
RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"


@pytest.fixture
def archive(open_archive: Callable[..., Archive]) -> Archive:
    """The test's archive (``tmp_path/"data"``, SQLite or PostgreSQL index)."""
    return open_archive(fsync=False)


@pytest.fixture
def app(archive: Archive) -> FastAPI:
    app = FastAPI()
    app.state.archive = archive
    problems.install(app)
    app.include_router(router)
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def ingest(archive: Archive, ds: Dataset) -> str:
    result = archive.ingest(part10(ds))
    assert result.outcome is Outcome.STORED, result
    return str(ds.SOPInstanceUID)


def sized_dataset(size: int, seed: int, **kwargs: Any) -> Dataset:
    """A make_dataset image whose pixel data is ``size`` bytes of noise (more than its
    4x4 geometry says: the archive keeps files as they are)."""
    ds = make_dataset(**kwargs)
    ds.PixelData = random.Random(seed).randbytes(size)
    return ds


def sample(name: str, study: str, series: str, **attributes: Any) -> Dataset:
    """A pydicom test file moved into ``study``/``series``, its transfer syntax kept."""
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientID, ds.PatientName = "PAT-1", "DOE^JANE"
    for keyword, value in attributes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


@dataclass
class Study:
    uid: str
    instances: list[str]  # SOP Instance UIDs in the order of their entries
    names: list[str] = field(default_factory=list)  # expected readable entry names
    other: str = ""  # another study of the same patient


@pytest.fixture
def study(archive: Archive) -> Study:
    """Two series: three CT images (explicit VR LE), then JPEG 2000 and RLE images, a
    Comprehensive SR and an RLE RT Dose without Instance Number; and a study of the same
    patient that must stay out of the archive."""
    uid, ct, mixed = generate_uid(), generate_uid(), generate_uid()
    instances = [ingest(archive, make_dataset(study_uid=uid, series_uid=ct, instance_number=n,
                                              pixel_seed=n)) for n in (1, 2, 3)]
    for n, name, extra in ((1, "JPEG2000.dcm", {}), (2, "MR_small_RLE.dcm", {}),
                           (3, "test-SR.dcm", {}),
                           (None, "rtdose_rle_1frame.dcm", {"InstanceNumber": None})):
        ds = sample(name, uid, mixed, SeriesNumber=2, **extra)
        if n is not None:
            ds.InstanceNumber = n
        instances.append(ingest(archive, ds))
    other = make_dataset(study_uid=generate_uid())  # another study of the same patient
    ingest(archive, other)
    stored = {archive.find(i).columns["transfer_syntax_uid"] for i in instances}  # type: ignore[union-attr]
    assert {JPEG2000, RLELossless} <= stored  # compressed syntaxes are part of the test
    base = f"PAT-1/{uid}"
    names = [f"{base}/1/0000{n}.dcm" for n in (1, 2, 3)]
    names += [f"{base}/2/0000{n}.dcm" for n in (1, 2, 3)] + [f"{base}/2/{instances[-1]}.dcm"]
    return Study(uid, instances, names, str(other.StudyInstanceUID))


def sop_uid_of(data: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)


def assert_entries_are_stored_files(archive: Archive, zf: zipfile.ZipFile,
                                    names: list[str], expected: list[str]) -> None:
    """Each of ``names`` is, byte for byte, the stored file of the instance in ``expected``
    at the same place."""
    for name, uid in zip(names, expected, strict=True):
        data = zf.read(name)
        assert sop_uid_of(data) == uid, name
        assert data == stored_bytes(archive, uid), name


# -- without DICOMDIR -----------------------------------------------------------------------

def test_zip_holds_each_stored_file_byte_for_byte(client: TestClient, archive: Archive,
                                                  study: Study) -> None:
    response = client.get(f"/api/studies/{study.uid}/archive")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == \
        f'attachment; filename="study-{study.uid}.zip"'
    zf = zipfile.ZipFile(io.BytesIO(response.content))
    assert zf.namelist() == study.names
    assert_entries_are_stored_files(archive, zf, study.names, study.instances)
    for info in zf.infolist():
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.flag_bits & 0x08, "streamed entries carry a data descriptor"
    assert zf.testzip() is None


def test_names_are_readable_safe_and_unique(client: TestClient, archive: Archive) -> None:
    """A Patient ID with unsafe characters; two series sharing a number; a series without
    one; two instances sharing a number; an instance without one; an empty Patient ID."""
    uid, five_a, five_b, bare = generate_uid(), "1.2.3.5.1", "1.2.3.5.2", "1.2.3.9"
    pid = "../Ünïcode id/x"
    made = [
        (make_dataset(study_uid=uid, series_uid=five_a, instance_number=1, patient_id=pid),
         f"5_{five_a}/00001_{{sop}}"),
        (make_dataset(study_uid=uid, series_uid=five_a, instance_number=1, patient_id=pid),
         f"5_{five_a}/00001_{{sop}}"),
        (make_dataset(study_uid=uid, series_uid=five_a, instance_number=2, patient_id=pid),
         f"5_{five_a}/00002"),
        (make_dataset(study_uid=uid, series_uid=five_a, patient_id=pid), f"5_{five_a}/{{sop}}"),
        (make_dataset(study_uid=uid, series_uid=five_b, instance_number=1, patient_id=pid),
         f"5_{five_b}/00001"),
        (make_dataset(study_uid=uid, series_uid=bare, instance_number=7, patient_id=pid),
         f"{bare}/00007"),
    ]
    made[3][0].InstanceNumber = None
    for ds, _ in made[:5]:
        ds.SeriesNumber = 5
    del made[5][0].SeriesNumber
    expected = {}
    for ds, name in made:
        ds.SpecificCharacterSet = "ISO_IR 192"
        expected[ingest(archive, ds)] = f"_n_code_id_x/{uid}/" + \
            name.format(sop=ds.SOPInstanceUID) + ".dcm"

    zf = zipfile.ZipFile(io.BytesIO(client.get(f"/api/studies/{uid}/archive").content))
    names = zf.namelist()
    assert {sop_uid_of(zf.read(n)): n for n in names} == expected
    assert len({n.lower() for n in names}) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9._/-]+", n) and ".." not in n.split("/")
               for n in names)

    other = generate_uid()
    ingest(archive, make_dataset(study_uid=other, patient_id=""))
    zf = zipfile.ZipFile(io.BytesIO(client.get(f"/api/studies/{other}/archive").content))
    assert zf.namelist() == [f"NOID/{other}/1/00001.dcm"]


@pytest.mark.parametrize("dicomdir", ["false", "true"])
def test_unknown_study_is_404(client: TestClient, archive: Archive, study: Study,
                              dicomdir: str) -> None:
    series = archive.series(study.uid)[0].columns["series_instance_uid"]
    both = f"{study.uid}\\{study.other}"  # not a list of UIDs here
    for uid in (generate_uid(), series, study.instances[0], "PAT-1", both):
        response = client.get(f"/api/studies/{uid}/archive", params={"dicomdir": dicomdir})
        assert response.status_code == 404, uid
        assert response.headers["content-type"] == problems.PROBLEM_JSON
        assert response.json()["status"] == 404
        assert uid in response.json()["detail"]


# -- with DICOMDIR --------------------------------------------------------------------------

def load_fileset(zf: zipfile.ZipFile, where: Path) -> FileSet:
    """The ZIP extracted under ``where`` and its DICOMDIR loaded: pydicom follows the
    offsets, drops records whose file is missing (with a warning), and raises on a record
    no offset leads to."""
    zf.extractall(where)
    fs = FileSet()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fs.load(where / "DICOMDIR", raise_orphans=True)
    assert not [w for w in caught if "does not exist" in str(w.message)]
    return fs


def test_dicomdir_file_set(client: TestClient, archive: Archive, study: Study,
                           tmp_path: Path) -> None:
    response = client.get(f"/api/studies/{study.uid}/archive", params={"dicomdir": "true"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(response.content))
    names = zf.namelist()
    assert names[-1] == "DICOMDIR"  # the instances stream first
    ids = names[:-1]
    assert len(ids) == len(study.instances)
    for name in ids:
        parts = name.split("/")
        assert len(parts) <= 8 and all(FILE_ID_COMPONENT.match(p) for p in parts), name
    assert_entries_are_stored_files(archive, zf, ids, study.instances)

    fs = load_fileset(zf, tmp_path / "media")
    assert len(fs) == len(study.instances)
    referenced = {"/".join(fi.ReferencedFileID): fi for fi in fs}
    assert set(referenced) == set(ids)
    types = {}
    for name, fi in referenced.items():
        meta = pydicom.dcmread(io.BytesIO(zf.read(name)), stop_before_pixels=True).file_meta
        assert fi.SOPInstanceUID == meta.MediaStorageSOPInstanceUID
        assert fi.SOPClassUID == meta.MediaStorageSOPClassUID
        assert fi.TransferSyntaxUID == meta.TransferSyntaxUID
        types[str(fi.SOPInstanceUID)] = fi.node.record_type
    assert [types[uid] for uid in study.instances] == \
        ["IMAGE"] * 5 + ["SR DOCUMENT", "RT DOSE"]
    assert fs.find_values("PatientID") == ["PAT-1"]
    assert fs.find_values("StudyInstanceUID") == [study.uid]
    series = [s.columns["series_instance_uid"] for s in archive.series(study.uid)]
    assert fs.find_values("SeriesInstanceUID") == series
    assert [len(fs.find(SeriesInstanceUID=s)) for s in series] == [3, 4]
    dose = fs.find(SOPInstanceUID=study.instances[-1])[0]
    assert dose.InstanceNumber == 4  # none in the instance: its rank in the series


def test_dicomdir_stands_in_for_empty_type1_keys(client: TestClient, archive: Archive,
                                                 tmp_path: Path) -> None:
    """PS3.3 F.5 keys the instance leaves empty (Patient ID, Study Date/Time/ID, Instance
    Number) get stand-ins, so pydicom can load the File-set; the file is unchanged."""
    ds = make_dataset(patient_id="")
    ds.StudyID, ds.StudyDate, ds.StudyTime = "", "", ""
    ds.SeriesDate = "20230405"
    del ds.InstanceNumber
    uid = ingest(archive, ds)
    response = client.get(f"/api/studies/{ds.StudyInstanceUID}/archive?dicomdir=1")
    zf = zipfile.ZipFile(io.BytesIO(response.content))
    assert zf.read("DICOM/P0000001/S0000001/SE000001/I0000001") == stored_bytes(archive, uid)
    fs = load_fileset(zf, tmp_path / "media")
    (fi,) = fs
    assert (fi.PatientID, fi.StudyDate, fi.StudyTime, fi.StudyID, fi.InstanceNumber) == \
        ("NOID", "20230405", "000000", "1", 1)


# -- streaming ------------------------------------------------------------------------------

@dataclass
class Streamed:
    status: int
    headers: dict[str, str]
    messages: int
    size: int


def drive(app: FastAPI, path: str, query: str, sink: BinaryIO,
          on_first_chunk: Callable[[], None] | None = None) -> Streamed:
    """Run one GET through the ASGI app, writing the body to ``sink`` as it comes."""
    result = Streamed(0, {}, 0, 0)

    async def run() -> None:
        done = asyncio.Event()
        requested = False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                result.status = message["status"]
                result.headers = {k.decode(): v.decode() for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body:
                    if result.messages == 0 and on_first_chunk is not None:
                        on_first_chunk()
                    result.messages += 1
                    result.size += len(body)
                    sink.write(body)
                if not message.get("more_body", False):
                    done.set()

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": query.encode(), "root_path": "", "client": ("127.0.0.1", 1),
                 "server": ("test", 80), "headers": [(b"host", b"test")]}
        await app(scope, receive, send)

    asyncio.run(run())
    return result


@pytest.mark.parametrize("dicomdir", [False, True])
def test_memory_stays_bounded(app: FastAPI, archive: Archive, tmp_path: Path,
                              dicomdir: bool) -> None:
    """200 instances of 256 KiB (51 MiB) stream with a peak far below the study's size,
    in many body messages; the ZIP, written to disk as it arrived, is complete."""
    uid, series = generate_uid(), [generate_uid() for _ in range(4)]
    size = 256 * 1024
    instances = [ingest(archive, sized_dataset(size, n, study_uid=uid, series_uid=series[n % 4],
                                               instance_number=n + 1)) for n in range(200)]
    out = tmp_path / "study.zip"
    with out.open("wb") as sink:
        tracemalloc.start()
        try:
            streamed = drive(app, f"/api/studies/{uid}/archive",
                             f"dicomdir={str(dicomdir).lower()}", sink)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert streamed.status == 200
    assert streamed.size > 200 * size
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert streamed.messages >= 40  # about one per MiB, not one at the end
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        infos = [i for i in zf.infolist() if i.filename != "DICOMDIR"]
        assert len(infos) == 200
        crcs = {zlib.crc32(stored_bytes(archive, i)) for i in instances}
        assert {i.CRC for i in infos} == crcs
        assert ("DICOMDIR" in zf.namelist()) is dicomdir


def local_extra_ids(data: bytes, info: zipfile.ZipInfo) -> tuple[set[int], int]:
    """The extra field IDs of an entry's local header, and the length of the data
    descriptor after its bytes (16, or 24 with ZIP64 sizes)."""
    head = data[info.header_offset:info.header_offset + 30]
    signature, *_, name_len, extra_len = struct.unpack("<4s5H3L2H", head)
    assert signature == b"PK\x03\x04"
    at = info.header_offset + 30 + name_len
    extra, ids = data[at:at + extra_len], set()
    while extra:
        header_id, length = struct.unpack("<HH", extra[:4])
        ids.add(header_id)
        extra = extra[4 + length:]
    end = at + extra_len + info.compress_size
    for fmt in ("<4sLQQ", "<4sLLL"):  # ZIP64 sizes, or 32-bit ones
        n = struct.calcsize(fmt)
        if struct.unpack(fmt, data[end:end + n]) == \
                (b"PK\x07\x08", info.CRC, info.compress_size, info.file_size) and \
                data[end + n:end + n + 4] in (b"PK\x03\x04", b"PK\x01\x02"):
            return ids, n
    raise AssertionError(f"no data descriptor after {info.filename}")


def test_zip64_when_sizes_need_it(client: TestClient, archive: Archive,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """With zipfile's ZIP64 threshold lowered to 200 kB, entries of 300 kB get ZIP64 local
    headers and data descriptors, small ones do not, and the archive gets ZIP64 end
    records: what a study over 4 GiB gets (checked once with a 4.5 GB entry and unzip)."""
    uid, series = generate_uid(), generate_uid()
    big = [ingest(archive, sized_dataset(300_000, n, study_uid=uid, series_uid=series,
                                         instance_number=n)) for n in (1, 2, 3)]
    small = ingest(archive, make_dataset(study_uid=uid, series_uid=series, instance_number=4))
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 200_000)
    data = client.get(f"/api/studies/{uid}/archive").content
    monkeypatch.undo()
    zf = zipfile.ZipFile(io.BytesIO(data))
    infos = zf.infolist()
    assert [sop_uid_of(zf.read(i)) for i in infos] == [*big, small]
    for info in infos[:3]:
        assert local_extra_ids(data, info) == ({0x0001}, 24)
    assert local_extra_ids(data, infos[3]) == (set(), 16)
    assert b"PK\x06\x06" in data[-200:] and b"PK\x06\x07" in data[-200:]  # ZIP64 end records
    assert_entries_are_stored_files(archive, zf, zf.namelist(), [*big, small])


@pytest.mark.parametrize("dicomdir", [False, True])
def test_instance_deleted_or_replaced_while_streaming(app: FastAPI, archive: Archive,
                                                      tmp_path: Path, dicomdir: bool) -> None:
    """Once the first MiB is out, the third instance is deleted and the second replaced:
    the ZIP leaves out the first and holds the second as it now is."""
    uid, series = generate_uid(), generate_uid()
    first = ingest(archive, sized_dataset(1_500_000, 1, study_uid=uid, series_uid=series,
                                          instance_number=1))
    second = ingest(archive, make_dataset(study_uid=uid, series_uid=series, instance_number=2))
    third = ingest(archive, make_dataset(study_uid=uid, series_uid=series, instance_number=3))
    old_second = stored_bytes(archive, second)

    def meanwhile() -> None:
        assert archive.delete(third) is not None
        replaced = archive.ingest(part10(make_dataset(study_uid=uid, series_uid=series,
                                                      sop_uid=second, instance_number=2,
                                                      pixel_seed=99)))
        assert replaced.outcome is Outcome.REPLACED, replaced

    sink = io.BytesIO()
    streamed = drive(app, f"/api/studies/{uid}/archive", f"dicomdir={str(dicomdir).lower()}",
                     sink, on_first_chunk=meanwhile)
    assert streamed.status == 200
    zf = zipfile.ZipFile(sink)
    names = [n for n in zf.namelist() if n != "DICOMDIR"]
    assert_entries_are_stored_files(archive, zf, names, [first, second])
    assert zf.read(names[1]) != old_second
    if dicomdir:
        fs = load_fileset(zf, tmp_path / "media")
        assert sorted(str(fi.SOPInstanceUID) for fi in fs) == sorted([first, second])
