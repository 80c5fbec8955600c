"""HL7 v2 test messages written out field by field (HL7 v2.3.1 ORM^O01 and v2.5.1 OMI^O23
as IHE RAD TF-2 RAD-4/RAD-13 send them), an MLLP client on a raw socket, and ACK reading.
Independent of pacsnode's own HL7 code, so that tests check it against these."""

from __future__ import annotations

import socket

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment with ``fields`` (number → value as written) and empty fields between."""
    last = max(fields) if fields else 0
    return "|".join([name, *(fields.get(n, "") for n in range(1, last + 1))])


def msh(control: str, kind: str = "ORM^O01", *, version: str = "2.3.1",
        processing: str = "P", charset: str = "") -> str:
    """MSH with field separator | and encoding characters ^~\\& (MSH-3.. from field 3)."""
    fields = {3: "RIS", 4: "HOSPITAL", 5: "PACSNODE", 6: "RADIOLOGY", 7: "20240315080000",
              9: kind, 10: control, 11: processing, 12: version}
    if charset:
        fields[18] = charset
    return "MSH|^~\\&|" + segment("X", fields).split("|", 3)[3]


def pid(patient_id: str = "P100", name: str = "DOE^JOHN", birth: str = "19700102",
        sex: str = "M") -> str:
    return segment("PID", {1: "1", 3: f"{patient_id}^^^HOSP^MR", 5: name, 7: birth,
                           8: sex})


def pv1(referring: str = "1234^REFERRER^RITA") -> str:
    return segment("PV1", {1: "1", 2: "O", 8: referring, 19: "V77"})


def orm(control: str, order_control: str, *, placer: str = "PL1", filler: str = "FL1",
        accession: str = "ACC1", rp_id: str = "RP1", sps_id: str = "SPS1",
        station: str = "CT01", modality: str = "CT", start: str = "202403150930",
        procedure: str = "CT001^CT HEAD^LOCAL", patient: str | None = None,
        study_uid: str = "", charset: str = "", version: str = "2.3.1",
        kind: str = "ORM^O01", processing: str = "P") -> bytes:
    """An ORM^O01 with one order (ORC + OBR [+ ZDS]), UTF-8 or the given MSH-18's
    encoding."""
    segments = [msh(control, kind, version=version, processing=processing,
                    charset=charset), patient or pid(), pv1(),
                segment("ORC", {1: order_control, 2: f"{placer}^RIS", 3: f"{filler}^PACS",
                                5: "SC", 7: f"^^^{start}^^R", 12: "5678^ORDERER^OTTO"}),
                segment("OBR", {1: "1", 2: f"{placer}^RIS", 3: f"{filler}^PACS",
                                4: procedure, 18: accession, 19: rp_id, 20: sps_id,
                                21: station, 24: modality, 27: f"^^^{start}^^R"})]
    if study_uid:
        segments.append(segment("ZDS", {1: f"{study_uid}^PACS^Application^DICOM"}))
    codec = {"8859/1": "latin-1", "": "utf-8", "UNICODE UTF-8": "utf-8"}[charset]
    return ("\r".join(segments) + "\r").encode(codec)


def omi(control: str, order_control: str, *, placer: str = "PL9", filler: str = "FL9",
        steps: tuple[tuple[str, str, str], ...] = (("SPS9A", "MR", "MR01"),),
        accession: str = "ACC9", study_uid: str = "1.2.826.0.1.3680043.10.511.9",
        start: str = "20240316141500", patient: str | None = None) -> bytes:
    """An OMI^O23 v2.5.1: ORC, TQ1, OBR and one IPC per (SPS ID, modality, station AE)."""
    segments = [msh(control, "OMI^O23^OMI_O23", version="2.5.1",
                    charset="UNICODE UTF-8"), patient or pid(), pv1(),
                segment("ORC", {1: order_control, 2: placer, 3: filler, 5: "SC"}),
                segment("TQ1", {1: "1", 7: start, 9: "S"}),
                segment("OBR", {1: "1", 2: placer, 3: filler, 4: "MR002^MR KNEE^LOCAL"})]
    for sps_id, modality, station in steps:
        segments.append(segment("IPC", {1: accession, 2: "RP9", 3: study_uid, 4: sps_id,
                                        5: modality, 6: "K1^KNEE PROTOCOL^LOCAL",
                                        7: "MRSTATION", 8: "ROOM 2", 9: station}))
    return ("\r".join(segments) + "\r").encode("utf-8")


def send(sock: socket.socket, message: bytes) -> bytes:
    """Send one message in an MLLP block on ``sock`` and return the answer (unframed)."""
    sock.sendall(VT + message + FS + CR)
    data = b""
    while not data.endswith(FS + CR):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed; received {data!r}")
        data += chunk
    assert data.startswith(VT), data
    return data[1:-2]


def ack_fields(ack: bytes, codec: str = "utf-8") -> dict[str, list[str]]:
    """The segments of an ACK by name, each as its fields (MSH: index 1 = MSH-2)."""
    out = {}
    for line in ack.decode(codec).split("\r"):
        if line:
            fields = line.split("|")
            out[fields[0]] = fields
    return out
