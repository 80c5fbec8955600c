"""Lossless change of transfer syntax for sending an instance to a peer that does not accept
its stored one: to an uncompressed little endian syntax (PS3.5 8, 10), pydicom doing the
work (pylibjpeg plugins for the compressed pixel data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)  # in order of preference


def choose_syntax(stored: str, accepted: set[str]) -> str | None:
    """The transfer syntax to send an instance in: as stored if accepted, else an accepted
    uncompressed one (Explicit VR Little Endian first), else None."""
    if stored in accepted:
        return stored
    for syntax in UNCOMPRESSED:
        if syntax in accepted:
            return syntax
    return None


# Binary VRs whose values pydicom keeps as bytes in the data set's byte order, by word size.
WORD_SIZES = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _swap_to_little_endian(ds: Dataset) -> None:
    """Byte-swap the words of the OW/OF/OL/OD/OV values of a data set read in big endian
    (pydicom decodes the other VRs into numbers, which it writes in the new byte order)."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value or ():
                _swap_to_little_endian(item)
        elif elem.VR in WORD_SIZES and isinstance(elem.value, bytes) and elem.value:
            size = WORD_SIZES[str(elem.VR)]
            if len(elem.value) % size:
                raise ValueError(f"{elem.tag}: {len(elem.value)} bytes is not whole words")
            elem.value = np.frombuffer(elem.value, dtype=f">u{size}").byteswap().tobytes()


def convert(source: Path, target: str, out: Any) -> None:
    """Write ``source`` (a Part-10 file) to ``out`` as a Part-10 file in the uncompressed
    little endian transfer syntax ``target``: compressed pixel data is decompressed, a big
    endian data set byte-swapped, the SOP Instance UID kept (PS3.5 8: a change of transfer
    syntax is not a new instance)."""
    ds = pydicom.dcmread(source)
    stored = UID(str(ds.file_meta.TransferSyntaxUID))
    if stored.is_compressed:
        ds.decompress(generate_instance_uid=False)
    elif not stored.is_little_endian:
        _swap_to_little_endian(ds)
    ds.file_meta.TransferSyntaxUID = UID(target)
    pydicom.dcmwrite(out, ds, enforce_file_format=True)
