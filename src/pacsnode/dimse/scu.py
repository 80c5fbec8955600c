"""pacsnode as a DICOM client: C-ECHO and C-STORE to another node (PS3.4 A, B)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from pynetdicom import AE, _config
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from pacsnode.dimse import transport_tuning

log = logging.getLogger(__name__)

MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context IDs are odd numbers 1–255
_config.LOG_HANDLER_LEVEL = "none"
_config.STORE_SEND_CHUNKED_DATASET = True  # stream files from disk, never decode them


class AssociationFailed(ConnectionError):
    """The peer could not be reached, or rejected or aborted the association."""


@dataclass(frozen=True)
class SendResult:
    """What happened to one file sent with C-STORE."""

    path: Path
    status: int | None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Success or a warning status (PS3.4 B.2.3)."""
        return self.status is not None and (self.status == 0 or self.status >> 12 == 0xB)


def _ae(calling_aet: str, timeout: float) -> AE:
    transport_tuning.install(0)
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    ae.maximum_pdu_size = 0
    return ae


def _associate(ae: AE, host: str, port: int, called_aet: str) -> Association:
    assoc = ae.associate(host, port, ae_title=called_aet)
    if not assoc.is_established:
        why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else \
            "could not connect"
        raise AssociationFailed(f"association with {called_aet}@{host}:{port} {why}")
    return assoc


def echo(host: str, port: int, *, calling_aet: str = "PACSNODE", called_aet: str = "ANY-SCP",
         timeout: float = 30.0) -> int:
    """Send one C-ECHO; returns the response status (0 = success)."""
    ae = _ae(calling_aet, timeout)
    ae.add_requested_context(Verification)
    assoc = _associate(ae, host, port, called_aet)
    try:
        rsp = assoc.send_c_echo()
        if "Status" not in rsp:
            raise AssociationFailed("no C-ECHO response (timeout or abort)")
        return int(rsp.Status)
    finally:
        assoc.release()


@dataclass(frozen=True)
class _FileInfo:
    path: Path
    sop_class: str
    transfer_syntax: str


def scan(paths: Iterable[Path]) -> Iterator[_FileInfo | SendResult]:
    """Read only the file meta of each file: its SOP class and transfer syntax."""
    for path in paths:
        try:
            meta = read_file_meta_info(path)
            yield _FileInfo(path, str(meta.MediaStorageSOPClassUID),
                            str(meta.TransferSyntaxUID))
        except Exception as exc:
            yield SendResult(path, None, f"not a DICOM file: {exc}")


def send(host: str, port: int, files: Iterable[Path], *, calling_aet: str = "PACSNODE",
         called_aet: str = "ANY-SCP", timeout: float = 60.0,
         on_result: Callable[[SendResult], None] | None = None) -> list[SendResult]:
    """C-STORE every file exactly as stored (no transcoding): one presentation context per
    (SOP class, transfer syntax) pair, at most 128 per association (PS3.8 9.3.2.2), so
    files are sent over as many associations as that takes."""
    results: list[SendResult] = []

    def report(result: SendResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    pending: list[_FileInfo] = []
    for item in scan(files):
        if isinstance(item, SendResult):
            report(item)
        else:
            pending.append(item)
    while pending:
        batch, contexts = _batch(pending)
        pending = pending[len(batch):]
        ae = _ae(calling_aet, timeout)
        for sop_class, syntax in sorted(contexts):
            ae.add_requested_context(sop_class, [syntax])
        assoc = _associate(ae, host, port, called_aet)
        try:
            for info in batch:
                if not assoc.is_established:
                    report(SendResult(info.path, None, "association lost"))
                    continue
                try:
                    rsp = assoc.send_c_store(info.path)
                except Exception as exc:  # e.g. the peer declined its context: this file only
                    report(SendResult(info.path, None, f"not sent: {exc}"))
                    continue
                status = int(rsp.Status) if "Status" in rsp else None
                comment = str(rsp.get("ErrorComment", "")) if status else ""
                report(SendResult(info.path, status, comment or
                                  ("" if status is not None else "no response")))
        finally:
            if assoc.is_established:
                assoc.release()
    return results


def _batch(pending: list[_FileInfo]) -> tuple[list[_FileInfo], set[tuple[str, str]]]:
    """The longest prefix of ``pending`` needing at most 128 (SOP class, transfer syntax)
    presentation contexts."""
    contexts: set[tuple[str, str]] = set()
    batch: list[_FileInfo] = []
    for info in pending:
        pair = (info.sop_class, info.transfer_syntax)
        if pair not in contexts:
            if len(contexts) == MAX_CONTEXTS:
                break
            contexts.add(pair)
        batch.append(info)
    return batch, contexts
