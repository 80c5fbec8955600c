"""MPPS Attribute and Modification Lists as a modality sends them (PS3.4 Table F.7.2-1),
for the unit and integration tests of the MPPS SCP."""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def n_create(*, study_uid: str, sps_id: str = "", accession: str = "",
             patient_id: str = "P1", patient_name: str = "DOE^JOHN",
             status: str = "IN PROGRESS", station_aet: str = "CT1",
             pps_id: str = "PPS1", modality: str = "CT") -> Dataset:
    """An N-CREATE Attribute List with every Type 1 and Type 2 attribute."""
    ds = Dataset()
    step = Dataset()
    step.StudyInstanceUID = study_uid
    step.ReferencedStudySequence = []
    step.AccessionNumber = accession
    step.RequestedProcedureID = "RP1" if sps_id else ""
    step.RequestedProcedureDescription = "HEAD"
    step.ScheduledProcedureStepID = sps_id
    step.ScheduledProcedureStepDescription = "HEAD"
    step.ScheduledProtocolCodeSequence = []
    ds.ScheduledStepAttributesSequence = [step]
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.ReferencedPatientSequence = []
    ds.PerformedProcedureStepID = pps_id
    ds.PerformedStationAETitle = station_aet
    ds.PerformedStationName = "CT SCANNER 1"
    ds.PerformedLocation = "ROOM 1"
    ds.PerformedProcedureStepStartDate = "20240315"
    ds.PerformedProcedureStepStartTime = "081500"
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepDescription = "HEAD"
    ds.PerformedProcedureTypeDescription = ""
    ds.ProcedureCodeSequence = []
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.Modality = modality
    ds.StudyID = "1"
    ds.PerformedProtocolCodeSequence = []
    ds.PerformedSeriesSequence = []
    return ds


def n_set_final(status: str, *, series_uid: str = "",
                instances: Sequence[str] = ()) -> Dataset:
    """An N-SET Modification List ending the step: ``status`` COMPLETED or DISCONTINUED,
    with one Performed Series Sequence item referencing ``instances`` (CT images) when
    ``series_uid`` is given."""
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = "20240315"
    ds.PerformedProcedureStepEndTime = "083000"
    series = []
    if series_uid:
        item = Dataset()
        item.PerformingPhysicianName = ""
        item.ProtocolName = "HEAD"
        item.OperatorsName = ""
        item.SeriesInstanceUID = series_uid
        item.SeriesDescription = "HEAD"
        item.RetrieveAETitle = ""
        refs = []
        for uid in instances:
            ref = Dataset()
            ref.ReferencedSOPClassUID = CT_IMAGE_STORAGE
            ref.ReferencedSOPInstanceUID = uid
            refs.append(ref)
        item.ReferencedImageSequence = refs
        item.ReferencedNonImageCompositeSOPInstanceSequence = []
        series.append(item)
    ds.PerformedSeriesSequence = series
    return ds
