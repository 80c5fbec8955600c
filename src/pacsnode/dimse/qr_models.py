"""The Query/Retrieve information models pacsnode serves (PS3.4 C.6.1, C.6.2): their SOP
class UIDs, services and levels, and the check of an identifier's Query/Retrieve Level
shared by C-FIND, C-MOVE and C-GET."""

from __future__ import annotations

from pydicom.dataset import Dataset

from pacsnode.dimse import statuses
from pacsnode.index.levels import Level

PATIENT_ROOT_LEVELS = (Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE)
STUDY_ROOT_LEVELS = (Level.STUDY, Level.SERIES, Level.IMAGE)

# SOP class UID -> (DIMSE service, model name, levels)
MODELS: dict[str, tuple[str, str, tuple[Level, ...]]] = {
    "1.2.840.10008.5.1.4.1.2.1.1": ("C-FIND", "Patient Root", PATIENT_ROOT_LEVELS),
    "1.2.840.10008.5.1.4.1.2.2.1": ("C-FIND", "Study Root", STUDY_ROOT_LEVELS),
    "1.2.840.10008.5.1.4.1.2.1.2": ("C-MOVE", "Patient Root", PATIENT_ROOT_LEVELS),
    "1.2.840.10008.5.1.4.1.2.2.2": ("C-MOVE", "Study Root", STUDY_ROOT_LEVELS),
    "1.2.840.10008.5.1.4.1.2.1.3": ("C-GET", "Patient Root", PATIENT_ROOT_LEVELS),
    "1.2.840.10008.5.1.4.1.2.2.3": ("C-GET", "Study Root", STUDY_ROOT_LEVELS),
}
QUERY_RETRIEVE_SOP_CLASSES = tuple(MODELS)


class Refused(Exception):
    """A request refused as a whole, with its status and Error Comment."""

    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment


def model_name(uid: str) -> str:
    """``Patient Root`` or ``Study Root`` (the UID itself for another model)."""
    return MODELS.get(uid, ("", uid, ()))[1]


def query_level(identifier: Dataset, model_uid: str) -> Level:
    """The Query/Retrieve Level of ``identifier``, which the model must have; otherwise
    :class:`Refused` with 0xA900, Identifier does not match SOP Class (PS3.4 C.4.1.1.4,
    C.4.2.1.5, C.4.3.1.4)."""
    _, name, levels = MODELS.get(model_uid, ("", model_uid, ()))
    raw = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    try:
        level = Level(raw)
    except ValueError:
        raise Refused(statuses.IDENTIFIER_DOES_NOT_MATCH,
                      f"Query/Retrieve Level {raw!r} is not one of "
                      f"{', '.join(lv.value for lv in levels)}") from None
    if level not in levels:
        raise Refused(statuses.IDENTIFIER_DOES_NOT_MATCH,
                      f"the {name} model has no {level.value} level")
    return level
