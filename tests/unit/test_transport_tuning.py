"""pacsnode's replacement of pynetdicom's UI validator gives pynetdicom's own answers
(with UID conformance not enforced, pynetdicom's default)."""

from __future__ import annotations

import warnings

import pytest
from pydicom.uid import UID
from pynetdicom._validators import validate_ui

from pacsnode.dimse.transport_tuning import _validate_ui


@pytest.mark.parametrize("value", ["1.2.3", "", "9" * 64, "9" * 65, "1.2.840.10008.5.1.4.1.1.2",
                                   UID("1.2"), 5, b"1.2", None, "a.b", " 1.2 "])
def test_same_answers_as_pynetdicom(value: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _validate_ui(value) == validate_ui(value)  # type: ignore[arg-type]
