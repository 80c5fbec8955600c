"""WADO-RS retrieve's body (:mod:`pacsnode.web.wado`): small instances gathered into large
chunks, a file larger than a chunk streamed on its own, converted copies sent and removed —
every part byte-identical to the stored file (``transfer-syntax=*``) or to its conversion,
in order, with the multipart framing of PS3.18 8.6. Driven through the ASGI app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email.parser import BytesParser

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian

from pacsnode.core.archive import Archive
from pacsnode.web import problems, wado
from tests.unit.dicomdata import make_dataset, part10, stored_bytes, temp_files


@pytest.fixture
def archive(open_archive: Callable[..., Archive]) -> Archive:
    return open_archive(fsync=False)


@pytest.fixture
def client(archive: Archive) -> Iterator[TestClient]:
    app = FastAPI()
    app.state.archive = archive
    problems.install(app)
    app.include_router(wado.router, prefix="/dicom-web")
    with TestClient(app) as client:
        yield client


def parts(response_body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    message = BytesParser().parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + response_body)
    assert message.is_multipart()
    return [(str(p.get_content_type()) + str(p.get_params()), p.get_payload(decode=True))
            for p in message.get_payload()]  # type: ignore[union-attr]


def test_small_large_and_converted_parts(archive: Archive, client: TestClient,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wado, "WHOLE_PART", 4096)  # chunks of 4 KB: several per part
    monkeypatch.setattr(wado, "CHUNK", 1000)
    study = make_dataset().StudyInstanceUID
    series = make_dataset().SeriesInstanceUID
    datasets = []
    for n in range(12):
        ds = make_dataset(study_uid=study, series_uid=series, instance_number=n,
                          pixel_seed=n)
        if n == 5:  # one larger than a chunk
            ds.Rows = ds.Columns = 64
            ds.PixelData = bytes(range(256)) * 32
        if n == 7:  # one that needs converting for an uncompressed request
            ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
        datasets.append(ds)
        assert archive.ingest(part10(ds)).ok
    url = f"/dicom-web/studies/{study}/series/{series}"
    as_stored = client.get(url, headers={
        "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    assert as_stored.status_code == 200
    got = parts(as_stored.content, as_stored.headers["content-type"])
    assert [body for _, body in got] == [stored_bytes(archive, ds.SOPInstanceUID)
                                         for ds in datasets]
    converted = client.get(url, headers={
        "Accept": 'multipart/related; type="application/dicom"'})
    got = parts(converted.content, converted.headers["content-type"])
    assert len(got) == 12
    assert all(ExplicitVRLittleEndian in kind for kind, _ in got)
    assert got[7][1] != stored_bytes(archive, datasets[7].SOPInstanceUID)  # converted
    assert got[6][1] == stored_bytes(archive, datasets[6].SOPInstanceUID)
    assert temp_files(archive.settings.data_dir) == []  # converted copies removed
