"""DICOMweb (PS3.18) served by ``pacsnode serve``, driven by the third-party client
``dicomweb-client`` and by raw HTTP (httpx) for headers and error statuses, on both index
backends.

The corpus: the named patients of the C-FIND tests (DOE^JOHN, Müller in Latin-1 and UTF-8,
Greek, Japanese in ISO 2022 IR 87) and pydicom's sample files in several transfer
syntaxes (JPEG 2000, JPEG-LS, RLE, big endian, multi-frame). Expected results come from the
corpus table and from pydicom reading the files, not from pacsnode.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from tests.conftest import DCMTK_ENV, PacsnodeServer, dcmtk
from tests.integration.corpus import dataset_bytes
from tests.integration.test_find_dcmtk import JAPANESE, STUDIES, write_corpus

SAMPLES = ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm",
           "MR_small_bigendian.dcm", "JPEG2000.dcm", "emri_small.dcm"]
DICOM_JSON = "application/dicom+json"


SAMPLE_ROOT = "1.2.826.0.1.3680043.10.511.3"


def write_samples(directory: Path) -> dict[str, Path]:
    """pydicom's sample files, each with a SOP Instance UID of its own (several are the same
    instance in different transfer syntaxes), saved in their own transfer syntax."""
    out = {}
    for n, name in enumerate(SAMPLES, start=1):
        ds = pydicom.dcmread(get_testdata_file(name))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{SAMPLE_ROOT}.{n}"
        out[name] = directory / name
        ds.save_as(out[name], enforce_file_format=True)
        assert pydicom.dcmread(out[name]).file_meta.TransferSyntaxUID == \
            pydicom.dcmread(get_testdata_file(name)).file_meta.TransferSyntaxUID
    return out


class Web:
    """The server, a dicomweb-client on it, and what was stored."""

    def __init__(self, server: PacsnodeServer, corpus: list[Path],
                 samples: dict[str, Path]) -> None:
        self.server = server
        self.client = DICOMwebClient(server.dicomweb)
        self.http = httpx.Client(base_url=server.dicomweb, timeout=60)
        self.corpus = corpus
        self.sample = samples
        self.samples = list(samples.values())
        self.stow_response: Dataset | None = None


@pytest.fixture(scope="module")
def web(module_server: PacsnodeServer, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Web]:
    corpus = write_corpus(tmp_path_factory.mktemp("names"))
    w = Web(module_server, corpus, write_samples(tmp_path_factory.mktemp("samples")))
    w.stow_response = w.client.store_instances(
        [pydicom.dcmread(p) for p in corpus + w.samples])
    yield w
    w.http.close()


def accessions(results: list[dict]) -> list[str]:
    return sorted(r["00080050"]["Value"][0] for r in results if r["00080050"].get("Value"))


# -- STOW-RS -------------------------------------------------------------------------------


def test_stow_references_every_instance_with_a_reachable_url(web: Web) -> None:
    response = web.stow_response
    assert response is not None and "FailedSOPSequence" not in response
    expected = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
                for p in web.corpus + web.samples}
    referenced = {str(item.ReferencedSOPInstanceUID): str(item.RetrieveURL)
                  for item in response.ReferencedSOPSequence}
    assert set(referenced) == expected
    url = referenced[str(pydicom.dcmread(web.samples[0]).SOPInstanceUID)]
    assert url.startswith(web.server.dicomweb + "/studies/")  # the port is in it
    got = web.http.get(url, headers={"Accept": 'multipart/related; type="application/dicom"; '
                                               "transfer-syntax=*"})
    assert got.status_code == 200


def _multipart(parts: list[tuple[str, bytes]], boundary: str = "XbX") -> bytes:
    out = b""
    for content_type, body in parts:
        out += f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode() + body + \
            b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=XbX'


def test_stow_statuses_and_failure_reasons(web: Web, tmp_path: Path) -> None:
    good = pydicom.dcmread(get_testdata_file("rtplan.dcm"))
    raw = Path(str(get_testdata_file("rtplan.dcm"))).read_bytes()
    other_study = "1.2.826.0.1.3680043.10.511.99"

    # one good instance and one part that is not DICOM: 202, one of each sequence
    r = web.http.post("/studies", content=_multipart([("application/dicom", raw),
                                                      ("application/dicom", b"not dicom")]),
                      headers={"Content-Type": STOW_TYPE})
    assert r.status_code == 202, r.text
    assert r.headers["content-type"].startswith(DICOM_JSON)
    body = r.json()
    assert [i["00081155"]["Value"][0] for i in body["00081199"]["Value"]] == \
        [str(good.SOPInstanceUID)]
    assert [i["00081197"]["Value"][0] for i in body["00081198"]["Value"]] == [0xC000]

    # an instance of another study than the URL's: refused, nothing stored, 409
    r = web.http.post(f"/studies/{other_study}", content=_multipart([("application/dicom",
                                                                       raw)]),
                      headers={"Content-Type": STOW_TYPE})
    assert r.status_code == 409, r.text
    assert [i["00081197"]["Value"][0] for i in r.json()["00081198"]["Value"]] == [0xA900]
    assert web.http.get(f"/studies/{other_study}/metadata").status_code == 404

    # a truncated body (no close delimiter) and a missing boundary: 400 problem+json
    truncated = _multipart([("application/dicom", raw)])[:-30]
    for content, ctype in ((truncated, STOW_TYPE),
                           (b"x", 'multipart/related; type="application/dicom"')):
        r = web.http.post("/studies", content=content, headers={"Content-Type": ctype})
        assert r.status_code == 400, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"]
    # another media type: 415
    r = web.http.post("/studies", content=raw, headers={"Content-Type": "application/dicom"})
    assert r.status_code == 415 and r.json()["status"] == 415
    assert web.server.alive()


# -- QIDO-RS -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("DOE^JOHN", ["A1", "A7"]),
    ("doe*", ["A1", "A2", "A7"]),
    ("DOE^JA?E", ["A2"]),
    ("Müller*", ["A3", "A4"]),
    ("MÜLLER^JÜRGEN", ["A3", "A4"]),
    ("Διονυσιος", ["A5"]),
    ("山田^太郎", ["A6"]),
    ("Yamada*", ["A6"]),
])
def test_qido_person_names(web: Web, name: str, expected: list[str]) -> None:
    """dicomweb-client percent-encodes the values (UTF-8), as browsers and viewers do."""
    assert accessions(web.client.search_for_studies(search_filters={"PatientName": name})
                      ) == expected


def test_qido_names_come_back_intact(web: Web) -> None:
    results = web.client.search_for_studies(search_filters={"AccessionNumber": "A6"})
    assert len(results) == 1
    name = pydicom.dataset.Dataset.from_json(results[0]).PatientName
    assert str(name) == JAPANESE
    greek = web.client.search_for_studies(search_filters={"00100020": "P5"})
    assert str(Dataset.from_json(greek[0]).PatientName) == "Διονυσιος"


def test_qido_filters_and_paging(web: Web) -> None:
    search = web.client.search_for_studies
    assert accessions(search(search_filters={"PatientID": "P1"})) == ["A1", "A7"]
    assert accessions(search(search_filters={"StudyDate": "20200101-20201231",
                                             "AccessionNumber": "A*"})) == ["A1", "A2"]
    assert accessions(search(search_filters={"StudyDate": "-20191231"})) == ["A5"]
    assert accessions(search(search_filters={"ModalitiesInStudy": "PT"})) == ["A3"]
    ours = {"AccessionNumber": "A*"}
    everything = [r["0020000D"]["Value"][0] for r in search(search_filters=ours)]
    assert len(everything) == len(STUDIES)
    pages = [search(search_filters=ours, limit=3, offset=n) for n in range(0, 9, 3)]
    assert [r["0020000D"]["Value"][0] for page in pages for r in page] == everything

    study = f"{everything[2]}"
    series = web.client.search_for_series(study)
    assert sorted(s["00080060"]["Value"][0] for s in series) == ["CT", "PT"]
    assert all(s["00081190"]["Value"][0].endswith(s["0020000E"]["Value"][0]) for s in series)
    mr_series = web.client.search_for_series(search_filters={"Modality": "MR",
                                                             "PatientID": "P2"})
    assert len(mr_series) == 2 and all("00100010" in s for s in mr_series)  # study level too
    instances = web.client.search_for_instances(study, series[0]["0020000E"]["Value"][0])
    assert len(instances) == 2 and {"00080016", "00080018", "00200013"} <= set(instances[0])
    everywhere = web.client.search_for_instances(search_filters={"PatientID": "P2"})
    assert len(everywhere) == 4


def test_qido_includefield(web: Web) -> None:
    plain = web.client.search_for_studies(search_filters={"AccessionNumber": "A1"})[0]
    assert "00081030" not in plain  # Study Description: not a default attribute
    named = web.client.search_for_studies(search_filters={"AccessionNumber": "A1"},
                                          fields=["StudyDescription", "00081030"])[0]
    assert named["00081030"]["Value"] == ["UNIT TEST STUDY"]
    every = web.client.search_for_studies(search_filters={"AccessionNumber": "A1"},
                                          get_remaining=False, fields=["all"])[0]
    assert every["00081030"]["Value"] == ["UNIT TEST STUDY"]
    assert every["00100030"]["Value"] == ["19700101"]  # and the patient's attributes
    assert set(plain) <= set(every)
    series = web.client.search_for_series(plain["0020000D"]["Value"][0],
                                          fields=["SeriesDescription"])
    assert [s["0008103E"]["Value"] for s in series] == [["UNIT TEST SERIES"]]


def test_qido_http_details(web: Web) -> None:
    r = web.http.get("/studies", params={"PatientID": "NOBODY"})
    assert r.status_code == 204 and r.content == b""
    assert web.client.search_for_studies(search_filters={"PatientID": "NOBODY"}) == []
    r = web.http.get("/studies", params={"PatientName": "DOE*", "fuzzymatching": "true"})
    assert r.status_code == 200 and r.headers["warning"].startswith("299 ")
    assert r.headers["content-type"].startswith(DICOM_JSON)
    assert "fuzzymatching" in r.headers["warning"]
    # a key below the query level is ignored with a warning
    r = web.http.get("/studies", params={"SOPClassUID": "1.2.3", "AccessionNumber": "A1"})
    assert r.status_code == 200 and "SOPClassUID" in r.headers["warning"]
    for params in ({"NotAKeyword": "x"}, {"limit": "-1"}, {"fuzzymatching": "maybe"}):
        r = web.http.get("/studies", params=params)
        assert r.status_code == 400, params
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"]
    r = web.http.get("/studies", headers={"Accept": "text/html"})
    assert r.status_code == 406  # application/dicom+xml: test_dicomweb_xml_rendered.py


# -- WADO-RS -------------------------------------------------------------------------------


def _identity(path: Path) -> tuple[str, str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def _retrieve_raw(web: Web, path: Path, accept: str) -> httpx.Response:
    study, series, sop = _identity(path)
    return web.http.get(f"/studies/{study}/series/{series}/instances/{sop}",
                        headers={"Accept": accept})


def _parts(response: httpx.Response) -> list[bytes]:
    """The bodies of a multipart/related response (parsed here, not by pacsnode's code)."""
    import email.parser
    import email.policy

    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + response.headers["content-type"].encode() + b"\r\n\r\n" +
        response.content)
    return [part.get_payload(decode=True) for part in message.iter_parts()]


@pytest.mark.parametrize("name", SAMPLES)
def test_wado_as_stored_is_byte_identical(web: Web, name: str) -> None:
    path = web.sample[name]
    study, series, sop = _identity(path)
    got = web.client.retrieve_instance(study, series, sop,
                                       media_types=(("application/dicom", "*"),))
    assert str(got.SOPInstanceUID) == sop
    r = _retrieve_raw(web, path, 'multipart/related; type="application/dicom"; '
                                 "transfer-syntax=*")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("multipart/related")
    assert 'type="application/dicom"' in r.headers["content-type"]
    (part,) = _parts(r)
    assert dataset_bytes(part) == dataset_bytes(path)


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "MR_small_bigendian.dcm", "JPEG2000.dcm"])
def test_wado_default_is_explicit_little_endian(web: Web, name: str) -> None:
    """No transfer-syntax parameter: Explicit VR Little Endian (PS3.18 8.7.3.5.2), pixels
    decoded losslessly (JPEG 2000 here is lossless too: pixel-equal)."""
    path = web.sample[name]
    study, series, sop = _identity(path)
    original = pydicom.dcmread(path)
    r = _retrieve_raw(web, path, 'multipart/related; type="application/dicom"')
    assert r.status_code == 200
    (part,) = _parts(r)
    got = pydicom.dcmread(io.BytesIO(part))
    assert got.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert np.array_equal(got.pixel_array, original.pixel_array)
    asked = web.client.retrieve_instance(study, series, sop, media_types=(
        ("application/dicom", ExplicitVRLittleEndian),))
    assert asked.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert np.array_equal(asked.pixel_array, original.pixel_array)
    # a compressed syntax other than the stored one cannot be produced: 406
    r = _retrieve_raw(web, path, 'multipart/related; type="application/dicom"; '
                                 "transfer-syntax=1.2.840.10008.1.2.4.203")
    assert r.status_code == 406 and r.json()["status"] == 406


def test_wado_study_and_series_and_404(web: Web) -> None:
    study = f"{STUDIES[1][0]}"
    found = web.client.search_for_studies(search_filters={"AccessionNumber": study})
    uid = found[0]["0020000D"]["Value"][0]
    instances = web.client.retrieve_study(uid)
    assert len(instances) == 4
    series = instances[0].SeriesInstanceUID
    assert len(web.client.retrieve_series(uid, str(series))) == 2
    for path in (f"/studies/{uid}.9", f"/studies/{uid}/series/1.2.3",
                 f"/studies/{uid}/series/1.2.3/instances/1.2.4/metadata"):
        r = web.http.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/problem+json"


def _json_values(node: dict) -> dict:
    return {k: v for k, v in node.items() if k not in ("BulkDataURI", "InlineBinary")}


@pytest.mark.parametrize("name", SAMPLES)
def test_wado_metadata_equals_the_file(web: Web, name: str) -> None:
    """Every top-level attribute pydicom reads from the file is in the metadata with the
    same value; bulk data is a BulkDataURI that answers."""
    path = web.sample[name]
    study, series, sop = _identity(path)
    (meta,) = web.client.retrieve_instance_metadata(study, series, sop),
    ds = pydicom.dcmread(path)
    expected = ds.to_json_dict(bulk_data_threshold=1024,
                               bulk_data_element_handler=lambda e: "bulk")
    for key, value in expected.items():
        if key == "FFFCFFFC" or key.endswith("0000"):  # padding, group lengths: not data
            continue
        assert key in meta, f"{name}: {key} missing"
        if "BulkDataURI" in value or "InlineBinary" in value:
            continue
        assert _json_values(meta[key]) == _json_values(value), f"{name}: {key}"
    assert meta["7FE00010"]["BulkDataURI"].startswith(web.server.dicomweb)


def test_cstore_and_stow_see_each_other(web: Web, tmp_path: Path) -> None:
    """An instance stored by DCMTK storescu is found by QIDO and retrieved by WADO; a study
    stored by STOW is found by findscu."""
    ds = pydicom.dcmread(web.sample["CT_small.dcm"])
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.511.77.1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.511.77"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.10.511.77.0"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = tmp_path / "ct.dcm"
    ds.save_as(path, enforce_file_format=True)
    proc = subprocess.run([dcmtk("storescu"), "-aec", web.server.aet, "127.0.0.1",
                           str(web.server.port), str(path)], env=DCMTK_ENV,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    found = web.client.search_for_instances(search_filters={"SOPInstanceUID":
                                                            ds.SOPInstanceUID})
    assert len(found) == 1
    r = _retrieve_raw(web, path, 'multipart/related; type="application/dicom"; '
                                 "transfer-syntax=*")
    (part,) = _parts(r)
    sent, got = pydicom.dcmread(path), pydicom.dcmread(io.BytesIO(part))
    for data in (sent, got):  # storescu drops the trailing padding when it re-encodes
        data.pop(0xFFFCFFFC, None)
    assert got == sent

    stowed = str(pydicom.dcmread(web.samples[2], stop_before_pixels=True).StudyInstanceUID)
    out = tmp_path / "rsp"
    out.mkdir()
    proc = subprocess.run([dcmtk("findscu"), "-S", "-aec", web.server.aet, "-X", "-od",
                           str(out), "-k", "QueryRetrieveLevel=STUDY", "-k",
                           f"StudyInstanceUID={stowed}", "127.0.0.1", str(web.server.port)],
                          env=DCMTK_ENV, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [str(pydicom.dcmread(p).StudyInstanceUID) for p in out.iterdir()] == [stowed]


# -- frames and bulk data ------------------------------------------------------------------


def _native_frames(path: Path) -> list[bytes]:
    """The uncompressed little endian bytes of each frame, decoded here by pydicom."""
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames") or 1)
    if frames == 1:
        arr = arr[np.newaxis]
    return [np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes() for a in arr]


@pytest.mark.parametrize("name", ["CT_small.dcm", "emri_small.dcm", "MR_small_bigendian.dcm",
                                  "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm"])
def test_frames_uncompressed(web: Web, name: str) -> None:
    """application/octet-stream (the default): native little endian frames, compressed
    ones decoded, byte-equal to pydicom's decoding of the file."""
    path = web.sample[name]
    study, series, sop = _identity(path)
    expected = _native_frames(path)
    numbers = [1] if len(expected) == 1 else [2, 5, 10]
    got = web.client.retrieve_instance_frames(
        study, series, sop, frame_numbers=numbers,
        media_types=(("application/octet-stream", ExplicitVRLittleEndian),))
    assert got == [expected[n - 1] for n in numbers]
    r = web.http.get(f"/studies/{study}/series/{series}/instances/{sop}/frames/"
                     f"{','.join(map(str, numbers))}")
    assert r.status_code == 200
    assert 'type="application/octet-stream"' in r.headers["content-type"]
    assert _parts(r) == [expected[n - 1] for n in numbers]


@pytest.mark.parametrize(("name", "media_type"), [("MR_small_RLE.dcm", "image/dicom-rle"),
                                                  ("MR_small_jpeg_ls_lossless.dcm",
                                                   "image/jls"),
                                                  ("JPEG2000.dcm", "image/jp2")])
def test_frames_as_stored(web: Web, name: str, media_type: str) -> None:
    from pydicom.encaps import generate_frames

    path = web.sample[name]
    study, series, sop = _identity(path)
    ds = pydicom.dcmread(path)
    (expected,) = list(generate_frames(ds.PixelData, number_of_frames=1))
    for accept in (f'multipart/related; type="{media_type}"',
                   'multipart/related; type="application/octet-stream"; transfer-syntax=*'):
        r = web.http.get(f"/studies/{study}/series/{series}/instances/{sop}/frames/1",
                         headers={"Accept": accept})
        assert r.status_code == 200, (accept, r.text)
        assert _parts(r) == [expected]
    got = web.client.retrieve_instance_frames(study, series, sop, frame_numbers=[1],
                                              media_types=((media_type,),))
    assert got == [expected]


def test_frames_errors_and_bulkdata(web: Web) -> None:
    path = web.sample["emri_small.dcm"]
    study, series, sop = _identity(path)
    base = f"/studies/{study}/series/{series}/instances/{sop}"
    assert web.http.get(f"{base}/frames/11").status_code == 404
    assert web.http.get(f"{base}/frames/0").status_code == 400
    assert web.http.get(f"{base}/frames/x").status_code == 400
    r = web.http.get(f"{base}/frames/1", headers={"Accept": 'multipart/related; '
                                                            'type="image/jls"'})
    assert r.status_code == 406  # native frames are not re-compressed
    (meta,) = web.client.retrieve_instance_metadata(study, series, sop),
    uri = meta["7FE00010"]["BulkDataURI"]
    assert web.client.retrieve_bulkdata(uri) == _native_frames(path)


# -- rendered ------------------------------------------------------------------------------


def _image(response: httpx.Response, fmt: str):  # type: ignore[no-untyped-def]
    from PIL import Image

    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    assert image.format == fmt
    return image


def test_rendered_images(web: Web) -> None:
    path = web.sample["CT_small.dcm"]
    study, series, sop = _identity(path)
    base = f"/studies/{study}/series/{series}/instances/{sop}"
    jpeg = _image(web.http.get(f"{base}/rendered"), "JPEG")
    assert jpeg.size == (128, 128)
    values = np.asarray(jpeg.convert("L"))
    assert values.std() > 10 and len(np.unique(values)) > 32  # a picture, not a flat field
    png = _image(web.http.get(f"{base}/rendered", headers={"Accept": "image/png"}), "PNG")
    assert png.size == (128, 128)
    small = _image(web.http.get(f"{base}/rendered", params={"viewport": "64,64"}), "JPEG")
    assert small.size == (64, 64)
    # CT_small is stored in raw values with a rescale: a narrow window at the top of its
    # range is darker than a wide one around its middle
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    high = f"{hu.max() - 10},20"
    wide = f"{(hu.max() + hu.min()) / 2},{hu.max() - hu.min()}"
    dark = np.asarray(_image(web.http.get(f"{base}/rendered", params={"window": high}),
                             "JPEG").convert("L")).mean()
    mid = np.asarray(_image(web.http.get(f"{base}/rendered", params={"window": wide}),
                            "JPEG").convert("L")).mean()
    assert dark < mid - 20
    assert web.http.get(f"{base}/rendered", headers={"Accept": "image/webp"}
                        ).status_code == 406
    bad = web.http.get(f"{base}/rendered", params={"window": "abc"})
    assert bad.status_code == 400 and bad.json()["detail"]

    multi = web.sample["emri_small.dcm"]
    study, series, sop = _identity(multi)
    base = f"/studies/{study}/series/{series}/instances/{sop}"
    first = np.asarray(_image(web.http.get(f"{base}/frames/1/rendered"), "JPEG"))
    second = np.asarray(_image(web.http.get(f"{base}/frames/2/rendered"), "JPEG"))
    assert first.shape == second.shape and not np.array_equal(first, second)
    gif = _image(web.http.get(f"{base}/rendered", headers={"Accept": "image/gif"}), "GIF")
    assert gif.n_frames == 10
    for url in (f"/studies/{study}/thumbnail", f"/studies/{study}/series/{series}/thumbnail",
                f"{base}/thumbnail"):
        thumb = _image(web.http.get(url), "JPEG")
        assert max(thumb.size) <= 128 and np.asarray(thumb).std() > 5


def test_wado_uri(web: Web) -> None:
    from PIL import Image

    path = web.sample["MR_small_RLE.dcm"]
    study, series, sop = _identity(path)
    uids = {"requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": sop}
    r = httpx.get(f"{web.server.url}/wado", params={**uids, "contentType": "application/dicom",
                                                     "transferSyntax": "*"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/dicom"
    assert dataset_bytes(r.content) == dataset_bytes(path)
    r = httpx.get(f"{web.server.url}/wado", params={**uids, "contentType": "application/dicom"})
    converted = pydicom.dcmread(io.BytesIO(r.content))
    assert converted.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert np.array_equal(converted.pixel_array, pydicom.dcmread(path).pixel_array)
    r = httpx.get(f"{web.server.url}/wado", params={**uids, "rows": "32"})
    assert r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size == (32, 32)
    assert httpx.get(f"{web.server.url}/wado", params={**uids, "requestType": "X"}
                     ).status_code == 400
    assert httpx.get(f"{web.server.url}/wado", params={**uids, "objectUID": "1.2.3"}
                     ).status_code == 404
