"""application/dicom+xml (QIDO-RS, WADO-RS metadata) and the rendered study and series
resources of ``pacsnode serve``, over raw HTTP (httpx), on both index backends.

The corpus is one study of pydicom sample files, stored one at a time with dicomweb-client
in a known order: an RT Plan (no pixel data) in its own series, three CT images stored in
the order of Instance Numbers 3, 1, 2, and an enhanced MR (10 frames), an MR and an RGB
image (320×240) in a third series. The patient name has three groups (PS3.5 H.3.1), the CT
images carry a private block and text that needs XML escaping. The archive keeps patient,
study and series attributes once per entity, so the files are made to agree on them before
they are stored. Expected values come from pydicom reading the uploaded files and from
Pillow decoding the images, not from pacsnode.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import UID

from pacsnode.index.levels import Level, level_of
from tests.conftest import PacsnodeServer
from tests.unit.test_dicom_xml import decode, local, parse, same

ROOT = "1.2.826.0.1.3680043.10.511.9"
STUDY = ROOT
NAME = "Yamada^Tarou=山田^太郎=やまだ^たろう"
DESCRIPTION = 'Head <w/o> & "contrast"'
XML_ACCEPT = 'multipart/related; type="application/dicom+xml"'
# (file, series, instance number); stored in this order
CORPUS = [("rtplan.dcm", 1, 1), ("CT_small.dcm", 2, 3), ("CT_small.dcm", 2, 1),
          ("CT_small.dcm", 2, 2), ("emri_small.dcm", 3, 1), ("MR_small.dcm", 3, 2),
          ("examples_rgb_color.dcm", 3, 3)]


def harmonise(ds: Dataset, reference: Dataset, levels: set[Level]) -> None:
    """Give ``ds`` the attributes of ``levels`` that ``reference`` has, and no others."""
    for tag in [int(elem.tag) for elem in ds]:
        if level_of(tag) in levels and tag not in reference:
            del ds[tag]
    for elem in reference:
        if level_of(int(elem.tag)) in levels:
            ds[elem.tag] = elem


def write_corpus(directory: Path) -> list[Path]:
    paths: list[Path] = []
    first_of: dict[int, Dataset] = {}
    for n, (name, series, number) in enumerate(CORPUS, start=1):
        ds = pydicom.dcmread(str(get_testdata_file(name)))
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, "XMLR-1", "19800101"
        ds.StudyInstanceUID, ds.StudyDescription = STUDY, DESCRIPTION
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20240301", "120000", "XR1"
        ds.SeriesInstanceUID, ds.SeriesNumber = f"{ROOT}.{series}", series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID(
            f"{ROOT}.{series}.{n}")
        ds.InstanceNumber = number
        if name == "CT_small.dcm":
            block = ds.private_block(0x0033, "PACSNODE TEST", create=True)
            block.add_new(0x01, "LO", "a < b & c")
        if paths:
            harmonise(ds, pydicom.dcmread(paths[0]), {Level.PATIENT, Level.STUDY})
        if series in first_of:
            harmonise(ds, first_of[series], {Level.SERIES})
        first_of.setdefault(series, ds)
        paths.append(directory / f"{n}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


class Corpus:
    def __init__(self, server: PacsnodeServer, paths: list[Path]) -> None:
        self.server = server
        self.paths = paths
        self.http = httpx.Client(base_url=server.dicomweb, timeout=60)
        self.files = [pydicom.dcmread(p) for p in paths]

    def images(self, series: int | None = None) -> list[pydicom.Dataset]:
        """The stored instances with pixel data, in storage order."""
        return [ds for ds in self.files if "PixelData" in ds and
                (series is None or ds.SeriesInstanceUID == f"{ROOT}.{series}")]


@pytest.fixture(scope="module")
def corpus(module_server: PacsnodeServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Corpus]:
    paths = write_corpus(tmp_path_factory.mktemp("xmlr"))
    client = DICOMwebClient(module_server.dicomweb)
    for path in paths:  # one at a time: the storage order is part of what is checked
        client.store_instances([pydicom.dcmread(path)])
    c = Corpus(module_server, paths)
    yield c
    c.http.close()


def split_multipart(response: httpx.Response, part_type: str
                    ) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related response (headers, body), checking its framing:
    the type parameter, every delimiter and the close delimiter (RFC 2046 5.1.1)."""
    assert response.status_code == 200, response.text
    content_type = response.headers["content-type"]
    assert content_type.startswith(f'multipart/related; type="{part_type}"'), content_type
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    assert found is not None
    delimiter = b"--" + found.group(1).encode()
    body = response.content
    assert body.startswith(delimiter + b"\r\n") and body.endswith(delimiter + b"--\r\n")
    inner = body[len(delimiter) + 2: -len(delimiter) - 4]
    assert inner.endswith(b"\r\n")
    parts = []
    for chunk in inner[:-2].split(b"\r\n" + delimiter + b"\r\n"):
        head, separator, content = chunk.partition(b"\r\n\r\n")
        assert separator
        headers = {}
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        assert headers["content-type"] == part_type
        if "content-length" in headers:
            assert int(headers["content-length"]) == len(content)
        parts.append((headers, content))
    return parts


def image(data: bytes, fmt: str) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    assert picture.format == fmt
    return picture


# -- rendered study and series ----------------------------------------------------------


def test_rendered_study_one_image_per_instance_in_storage_order(corpus: Corpus) -> None:
    parts = split_multipart(corpus.http.get(f"/studies/{STUDY}/rendered"), "image/jpeg")
    expected = corpus.images()  # the RT plan has no pixel data: left out
    assert len(parts) == len(expected) == 6
    for (headers, data), ds in zip(parts, expected, strict=True):
        sop, series = ds.SOPInstanceUID, ds.SeriesInstanceUID
        url = f"{corpus.server.dicomweb}/studies/{STUDY}/series/{series}/instances/{sop}"
        assert headers["content-location"] == f"{url}/rendered"
        assert image(data, "JPEG").size == (ds.Columns, ds.Rows)
        # the same image as the instance's own rendered resource
        assert data == corpus.http.get(f"{url}/rendered").content
    colour = np.asarray(image(parts[-1][1], "JPEG"))
    assert colour.ndim == 3 and colour.std() > 10


def test_rendered_series_media_types_and_parameters(corpus: Corpus) -> None:
    base = f"/studies/{STUDY}/series/{ROOT}.3/rendered"
    expected = corpus.images(3)
    for accept in ("image/png", 'multipart/related; type="image/png"',
                   'image/webp, multipart/related; type="image/png"; q=0.9'):
        r = corpus.http.get(base, params={"viewport": "32,32"}, headers={"Accept": accept})
        parts = split_multipart(r, "image/png")
        sizes = [image(data, "PNG").size for _, data in parts]
        assert sizes == [(32, 32), (32, 32), (32, 24)]  # aspect kept: 320x240 → 32x24
    parts = split_multipart(corpus.http.get(base, headers={
        "Accept": 'multipart/related; type="image/gif"'}), "image/gif")
    assert [getattr(image(data, "GIF"), "n_frames", 1) for _, data in parts] == [10, 1, 1]
    assert len(parts) == len(expected)
    # the window applies to every image: a narrow window at the top of the CT range is
    # darker than a wide one around its middle, image by image
    ct = corpus.images(2)[0]
    hu = ct.pixel_array * float(ct.RescaleSlope) + float(ct.RescaleIntercept)
    series_ct = f"/studies/{STUDY}/series/{ROOT}.2/rendered"

    def means(window: str) -> list[float]:
        r = corpus.http.get(series_ct, params={"window": window})
        return [np.asarray(image(d, "JPEG").convert("L")).mean()
                for _, d in split_multipart(r, "image/jpeg")]

    dark = means(f"{hu.max() - 10},20")
    mid = means(f"{(hu.max() + hu.min()) / 2},{hu.max() - hu.min()}")
    assert len(dark) == len(mid) == 3 and all(d < m - 20 for d, m in zip(dark, mid,
                                                                          strict=True))
    low = corpus.http.get(series_ct, params={"quality": "5"})
    high = corpus.http.get(series_ct, params={"quality": "95"})
    assert len(split_multipart(low, "image/jpeg")) == 3
    assert len(low.content) < len(high.content) / 2


def test_rendered_study_errors(corpus: Corpus) -> None:
    study = f"/studies/{STUDY}/rendered"
    for accept in ('multipart/related; type="application/dicom"', "image/webp",
                   "application/dicom+json"):
        r = corpus.http.get(study, headers={"Accept": accept})
        assert r.status_code == 406, accept
        assert r.headers["content-type"] == "application/problem+json"
    for params in ({"window": "abc"}, {"viewport": "0,10"}, {"quality": "101"}):
        r = corpus.http.get(study, params=params)
        assert r.status_code == 400 and r.json()["detail"], params
    assert corpus.http.get(f"/studies/{ROOT}.77/rendered").status_code == 404
    assert corpus.http.get(f"/studies/{STUDY}/series/{ROOT}.77/rendered").status_code == 404
    r = corpus.http.get(f"/studies/{STUDY}/series/{ROOT}.1/rendered")  # the RT plan only
    assert r.status_code == 406 and "pixel data" in r.json()["detail"]


def test_thumbnails_are_one_image(corpus: Corpus) -> None:
    """PS3.18 10.4.3.3.4: a single image; a study whose first series has no image takes
    the next one."""
    r = corpus.http.get(f"/studies/{STUDY}/thumbnail")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert max(image(r.content, "JPEG").size) == 128
    r = corpus.http.get(f"/studies/{STUDY}/series/{ROOT}.3/thumbnail",
                        headers={"Accept": "image/png"})
    assert r.status_code == 200 and image(r.content, "PNG").size == (128, 128)
    assert corpus.http.get(f"/studies/{STUDY}/series/{ROOT}.1/thumbnail").status_code == 406


# -- application/dicom+xml --------------------------------------------------------------


def compare(expected: dict[str, Any], got: dict[str, Any], where: str) -> None:
    """pydicom's JSON of the file against the XML decoded; bulk data values are checked
    elsewhere (pacsnode keeps them as BulkDataURIs)."""
    for key, node in expected.items():
        if key == "FFFCFFFC" or key.endswith("0000"):  # padding, group lengths: not data
            continue
        assert key in got, f"{where}: {key} missing"
        assert got[key]["vr"] == node["vr"], f"{where}: {key}"
        if "BulkDataURI" in node or "InlineBinary" in node:
            assert "BulkDataURI" in got[key] or "InlineBinary" in got[key], f"{where}: {key}"
            continue
        values, mine = node.get("Value") or [], got[key].get("Value") or []
        assert len(values) == len(mine), f"{where}: {key}"
        for n, (value, value_got) in enumerate(zip(values, mine, strict=True)):
            if node["vr"] == "SQ":
                compare(value, value_got, f"{where}: {key}[{n}]")
            else:
                assert same(value, value_got, node["vr"]), (where, key, value, value_got)


def xml_parts(response: httpx.Response) -> list[ET.Element]:
    return [parse(body.decode("utf-8"))
            for _, body in split_multipart(response, "application/dicom+xml")]


def attribute(root: ET.Element, tag: str) -> ET.Element:
    found = [a for a in root if a.get("tag") == tag]
    assert len(found) == 1, tag
    return found[0]


def test_metadata_as_xml_equals_the_files(corpus: Corpus) -> None:
    r = corpus.http.get(f"/studies/{STUDY}/metadata", headers={"Accept": XML_ACCEPT})
    roots = xml_parts(r)
    assert len(roots) == len(corpus.files) == 7
    json_order = [m["00080018"]["Value"][0] for m in corpus.http.get(
        f"/studies/{STUDY}/metadata").json()]
    assert [decode(root)["00080018"]["Value"][0] for root in roots] == json_order == \
        [str(ds.SOPInstanceUID) for ds in corpus.files]
    for root, ds in zip(roots, corpus.files, strict=True):
        expected = ds.to_json_dict(bulk_data_threshold=1024,
                                   bulk_data_element_handler=lambda e: "bulk")
        compare(expected, decode(root), str(ds.SOPInstanceUID))
    ct = roots[1]
    name = attribute(ct, "00100010")[0]
    assert [local(group) for group in name] == ["Alphabetic", "Ideographic", "Phonetic"]
    assert [c.text for c in name[2]] == ["やまだ", "たろう"]
    assert attribute(ct, "00081030")[0].text == DESCRIPTION
    private = attribute(ct, "00331001")
    assert private.get("privateCreator") == "PACSNODE TEST" and "keyword" not in private.attrib
    assert private[0].text == "a < b & c"
    (bulk,) = attribute(ct, "7FE00010")
    assert local(bulk) == "BulkData"
    uri = bulk.get("uri", "")
    assert uri.startswith(f"{corpus.server.dicomweb}/studies/{STUDY}/series/")
    assert corpus.http.get(uri).status_code == 200
    # series and instance resources: one part per instance
    assert len(xml_parts(corpus.http.get(f"/studies/{STUDY}/series/{ROOT}.3/metadata",
                                         headers={"Accept": XML_ACCEPT}))) == 3
    ds = corpus.files[4]
    (one,) = xml_parts(corpus.http.get(
        f"/studies/{STUDY}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/"
        "metadata", headers={"Accept": "application/dicom+xml"}))
    assert decode(one)["00280008"]["Value"] == ["10"]


def test_metadata_negotiation(corpus: Corpus) -> None:
    url = f"/studies/{STUDY}/series/{ROOT}.1/metadata"
    json_first = "application/dicom+xml; q=0.5, application/dicom+json"
    r = corpus.http.get(url, headers={"Accept": json_first})
    assert r.status_code == 200 and r.headers["content-type"].startswith(
        "application/dicom+json")
    xml_first = f"application/dicom+json; q=0.3, {XML_ACCEPT}"
    assert len(xml_parts(corpus.http.get(url, headers={"Accept": xml_first}))) == 1
    for accept in ("text/html", 'multipart/related; type="application/dicom"'):
        r = corpus.http.get(url, headers={"Accept": accept})
        assert r.status_code == 406 and r.json()["status"] == 406
    r = corpus.http.get(f"/studies/{ROOT}.77/metadata", headers={"Accept": XML_ACCEPT})
    assert r.status_code == 404


def test_qido_as_xml(corpus: Corpus) -> None:
    params = {"StudyInstanceUID": STUDY, "includefield": "StudyDescription"}
    (root,) = xml_parts(corpus.http.get("/studies", params=params,
                                        headers={"Accept": XML_ACCEPT}))
    as_json = corpus.http.get("/studies", params=params).json()[0]
    got = decode(root)
    assert set(got) == set(as_json)
    compare(as_json, got, "study")
    file = corpus.files[1].to_json_dict()
    for key in ("00100010", "00081030", "00100020", "0020000D"):
        assert same(file[key]["Value"][0], got[key]["Value"][0], file[key]["vr"]), key
    assert sorted(got["00080061"]["Value"]) == ["CT", "MR", "RTPLAN"]
    assert got["00081190"]["Value"] == [f"{corpus.server.dicomweb}/studies/{STUDY}"]

    roots = xml_parts(corpus.http.get(f"/studies/{STUDY}/instances",
                                      headers={"Accept": "application/dicom+xml"}))
    assert [decode(r)["00080018"]["Value"][0] for r in roots] == \
        [str(ds.SOPInstanceUID) for ds in corpus.files]
    numbers = {decode(r)["00080018"]["Value"][0]: decode(r)["00200013"]["Value"][0]
               for r in roots}
    assert numbers == {str(ds.SOPInstanceUID): str(ds.InstanceNumber) for ds in corpus.files}
    series = xml_parts(corpus.http.get(f"/studies/{STUDY}/series", params={"limit": "2"},
                                       headers={"Accept": XML_ACCEPT}))
    assert [decode(r)["0020000E"]["Value"][0] for r in series] == [f"{ROOT}.1", f"{ROOT}.2"]
    r = corpus.http.get("/studies", params={"PatientID": "NOBODY"},
                        headers={"Accept": XML_ACCEPT})
    assert r.status_code == 204 and r.content == b""
    assert corpus.http.get("/studies", headers={"Accept": "text/xml"}).status_code == 406
