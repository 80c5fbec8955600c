"""Derived attributes (Number of Patient/Study/Series Related …, Modalities in Study, SOP
Classes in Study) against values recomputed from the ingested data sets."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path

from pydicom.uid import generate_uid

from pacsnode.core.archive import Archive
from pacsnode.core.results import Outcome
from tests.unit.dicomdata import (
    BASIC_TEXT_SR,
    SECONDARY_CAPTURE,
    assert_index_matches,
    corpus_inputs,
    ingest_all,
    make_dataset,
    part10,
)


def test_counts_after_ingesting_a_corpus(archive: Archive, corpus_files: list[Path]) -> None:
    inputs = corpus_inputs(corpus_files)
    ingest_all(archive, inputs)
    assert_index_matches(archive, inputs)
    assert archive.counts() == {"patients": 3, "studies": 6, "series": 13, "instances": 26}
    # Spot checks of the recomputation itself, so that a bug there cannot hide one here.
    first_study = archive.find(inputs[0].StudyInstanceUID)
    assert first_study is not None
    assert first_study.columns["modalities_in_study"] == "CT\\SR"
    assert first_study.columns["num_series"] == 3
    assert first_study.columns["num_instances"] == 5
    assert BASIC_TEXT_SR in first_study.columns["sop_classes_in_study"].split("\\")
    second_study = archive.find(inputs[4].StudyInstanceUID)
    assert second_study is not None
    assert second_study.columns["modalities_in_study"] == "MR"
    assert second_study.columns["sop_classes_in_study"].split("\\") == sorted(
        [inputs[4].SOPClassUID, SECONDARY_CAPTURE])
    patient = archive.find(inputs[0].PatientID)
    assert patient is not None
    assert (patient.columns["num_studies"], patient.columns["num_series"],
            patient.columns["num_instances"]) == (2, 5, 10)


def test_counts_do_not_depend_on_arrival_order(archive: Archive,
                                              corpus_files: list[Path]) -> None:
    inputs = corpus_inputs(corpus_files)
    ingest_all(archive, inputs[::-1])
    assert_index_matches(archive, inputs)


def test_counts_after_duplicates_and_replacements(archive: Archive,
                                                  corpus_files: list[Path]) -> None:
    inputs = corpus_inputs(corpus_files)
    ingest_all(archive, inputs)
    again = archive.ingest(part10(inputs[3]))
    assert again.outcome is Outcome.ALREADY_PRESENT
    changed = deepcopy(inputs[5])
    changed.SeriesDescription = "RENAMED"
    assert archive.ingest(part10(changed)).outcome is Outcome.REPLACED
    assert_index_matches(archive, [*inputs, changed])


def test_other_modality_in_an_existing_series(archive: Archive) -> None:
    """A series has one Modality (the latest instance's); Modalities in Study follows it."""
    first = make_dataset(modality="CT")
    other = make_dataset(modality="OT", sop_class=SECONDARY_CAPTURE,
                         study_uid=first.StudyInstanceUID, series_uid=first.SeriesInstanceUID,
                         instance_number=2)
    ingest_all(archive, [first, other])
    [series] = archive.series(first.StudyInstanceUID)
    assert series.columns["modality"] == "OT"
    assert_index_matches(archive, [first, other])
    study = archive.find(first.StudyInstanceUID)
    assert study is not None and study.columns["modalities_in_study"] == "OT"


def test_empty_modality_is_not_listed(archive: Archive) -> None:
    with_modality = make_dataset(modality="MR")
    without = make_dataset(modality="", study_uid=with_modality.StudyInstanceUID)
    ingest_all(archive, [with_modality, without])
    study = archive.find(with_modality.StudyInstanceUID)
    assert study is not None
    assert study.columns["modalities_in_study"] == "MR"
    assert study.columns["num_series"] == 2
    assert_index_matches(archive, [with_modality, without])


def test_many_series_and_patients_with_same_name(archive: Archive) -> None:
    """Two patients with the same name but different IDs stay two patients; the same
    Patient ID with another issuer is another patient."""
    a = make_dataset(patient_id="SAME", patient_name="TWIN^ONE")
    b = make_dataset(patient_id="OTHER", patient_name="TWIN^ONE")
    c = make_dataset(patient_id="SAME")
    c.IssuerOfPatientID = "ELSEWHERE"
    d = make_dataset(patient_id="SAME", study_uid=generate_uid())
    ingest_all(archive, [a, b, c, d])
    assert archive.counts()["patients"] == 3
    assert_index_matches(archive, [a, b, c, d])
