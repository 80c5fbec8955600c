"""DIMSE front end: pynetdicom handlers for each DICOM network service, thin, calling the
archive core."""
