"""Which attributes belong to which level of the patient–study–series–instance hierarchy.

Each level keeps its own attributes as DICOM JSON in the index, so that any return key of a
C-FIND at that level, and any DICOMweb metadata request (the merge of all four levels), is
answered without opening a file. The split follows the IODs' modules: Patient module →
patient; General Study and Patient Study modules → study; General Series, General Equipment,
Frame of Reference and the Performed Procedure Step summary → series; the rest → instance.
(PS3.3 C.7.1.1, C.7.2.1, C.7.2.2, C.7.3.1, C.7.4.1, C.7.5.1; PS3.4 C.6.1.1.)
"""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    """A level of the DICOM information model (PS3.4 C.6.1.1.1)."""

    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


def _tags(*values: int) -> frozenset[int]:
    return frozenset(values)


# Patient module (PS3.3 C.7.1.1) and the patient-identification parts of SOP Common.
PATIENT_TAGS = _tags(
    0x00081120,  # ReferencedPatientSequence
    0x00100010, 0x00100020, 0x00100021, 0x00100022, 0x00100024, 0x00100026, 0x00100027,
    0x00100028, 0x00100030, 0x00100032, 0x00100033, 0x00100034, 0x00100035, 0x00100040,
    0x00100050, 0x00100101, 0x00100102, 0x00100200, 0x00100201, 0x00100212, 0x00100213,
    0x00100214, 0x00100215, 0x00100216, 0x00100217, 0x00100218, 0x00100219, 0x00100221,
    0x00100222, 0x00100223, 0x00100229, 0x00101000, 0x00101001, 0x00101002, 0x00101005,
    0x00101060, 0x00101040, 0x00101080, 0x00101081, 0x00101090, 0x00101100,
    0x00102000, 0x00102110, 0x00102150, 0x00102152, 0x00102154, 0x00102160, 0x00102201,
    0x00102202, 0x00102292, 0x00102293, 0x00102294, 0x00102295, 0x00102296, 0x00102297,
    0x00102298, 0x00102299, 0x00104000, 0x00120062, 0x00120063, 0x00120064,
)

# General Study and Patient Study modules (PS3.3 C.7.2.1, C.7.2.2).
STUDY_TAGS = _tags(
    0x00080020, 0x00080030, 0x00080050, 0x00080051, 0x00080090, 0x00080096, 0x0008009C,
    0x0008009D, 0x00081030, 0x00081032, 0x00081048, 0x00081049, 0x00081060, 0x00081062,
    0x00081080, 0x00081084, 0x00081110, 0x00200010, 0x0020000D, 0x00321033, 0x00321034,
    0x00321060, 0x00321064, 0x00401012,
    0x00101010, 0x00101020, 0x00101021, 0x00101022, 0x00101023, 0x00101024, 0x00101030,
    0x00102180, 0x001021A0, 0x001021B0, 0x001021C0, 0x001021D0, 0x00102203,
    0x00380010, 0x00380014, 0x00380060, 0x00380062, 0x00380064, 0x00380500,
)

# General Series, General Equipment, Frame of Reference modules and the performed
# procedure step summary (PS3.3 C.7.3.1, C.7.5.1, C.7.4.1).
SERIES_TAGS = _tags(
    0x00080021, 0x00080031, 0x00080060, 0x00080070, 0x00080080, 0x00080081, 0x0008103E,
    0x0008103F, 0x00081010, 0x00081040, 0x00081041, 0x00081050, 0x00081052, 0x00081070,
    0x00081072, 0x00081090, 0x00081111, 0x00081250, 0x00180015, 0x00181000, 0x00181002,
    0x00181008, 0x00181010, 0x00181016, 0x00181018, 0x00181019, 0x00181020, 0x00181030,
    0x00181200, 0x00181201, 0x00185100, 0x0020000E, 0x00200011, 0x00200052, 0x00200060,
    0x00201040, 0x00102210, 0x00280108, 0x00280109, 0x00280120, 0x00400244, 0x00400245,
    0x00400253, 0x00400254, 0x00400260, 0x00400261, 0x00400275, 0x00400280,
)


def level_of(tag: int) -> Level:
    """The level whose DICOM JSON keeps ``tag``."""
    if tag in PATIENT_TAGS:
        return Level.PATIENT
    if tag in STUDY_TAGS:
        return Level.STUDY
    if tag in SERIES_TAGS:
        return Level.SERIES
    return Level.IMAGE
