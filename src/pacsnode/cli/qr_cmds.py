"""``pacsnode find``, ``move`` and ``get``: pacsnode as a Query/Retrieve SCU of a peer (a
name from the TOML file or the index, see ``pacsnode peers``)."""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from tqdm import tqdm

from pacsnode.cli.options import common_options, settings_from
from pacsnode.config import Peer, Settings
from pacsnode.core import peers as peer_dir
from pacsnode.core.archive import Archive
from pacsnode.core.results import IngestResult, Outcome
from pacsnode.dimse import qr_scu
from pacsnode.dimse.scu import AssociationFailed

LEVELS = ("patient", "study", "series", "image")
# Keys returned by default at each level (PS3.4 C.6.1.1.2–C.6.1.1.5, C.6.2.1): the level's
# unique key, the keys of the levels above that identify it, and the usual display keys.
DEFAULT_KEYS: dict[str, tuple[str, ...]] = {
    "PATIENT": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                "NumberOfPatientRelatedStudies"),
    "STUDY": ("PatientName", "PatientID", "StudyDate", "StudyTime", "AccessionNumber",
              "ModalitiesInStudy", "StudyDescription", "NumberOfStudyRelatedSeries",
              "NumberOfStudyRelatedInstances", "StudyInstanceUID"),
    "SERIES": ("StudyInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
               "NumberOfSeriesRelatedInstances", "SeriesInstanceUID"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "InstanceNumber", "SOPClassUID",
              "SOPInstanceUID"),
}
NOT_SHOWN = {0x00080005, 0x00080052}  # Specific Character Set, Query/Retrieve Level
_TAG_RE = re.compile(r"^\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?$")
_BINARY_VRS = {"US": int, "UL": int, "SS": int, "SL": int, "UV": int, "SV": int,
               "FL": float, "FD": float}


def parse_key(text: str) -> tuple[int, str | None]:
    """``-k`` syntax: ``Keyword=value``, ``gggg,eeee=value``, or either without ``=value``
    (a return key, sent empty: universal matching, PS3.4 C.2.2.2.3)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    match = _TAG_RE.match(name)
    if match:
        tag = int(match.group(1) + match.group(2), 16)
    else:
        found = tag_for_keyword(name)
        if found is None:
            raise click.BadParameter(f"{name!r} is not a DICOM keyword or a gggg,eeee tag",
                                     param_hint="-k")
        tag = int(found)
    try:
        dictionary_VR(tag)
    except KeyError:
        raise click.BadParameter(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is not in the DICOM "
                                 "dictionary", param_hint="-k") from None
    return tag, (value if sep else None)


def _element(tag: int, value: str | None) -> DataElement:
    vr = dictionary_VR(tag).split(" or ")[0]
    if vr == "SQ":
        if value:
            raise click.BadParameter(f"{keyword_for_tag(tag)} is a sequence: give it "
                                     "without a value", param_hint="-k")
        return DataElement(tag, vr, Sequence([]))
    if not value:
        return DataElement(tag, vr, None)
    convert = _BINARY_VRS.get(vr)
    if convert is not None:
        try:
            parts = [convert(v) for v in value.split("\\")]
        except ValueError:
            raise click.BadParameter(f"{keyword_for_tag(tag)} ({vr}) needs a number, not "
                                     f"{value!r}", param_hint="-k") from None
        return DataElement(tag, vr, parts[0] if len(parts) == 1 else parts)
    return DataElement(tag, vr, value)


def build_identifier(level: str, keys: Iterable[tuple[int, str | None]]) -> Dataset:
    """The C-FIND Identifier: Query/Retrieve Level, the level's default return keys, then
    the ``-k`` keys (which override a default of the same tag). A value outside ASCII makes
    the Specific Character Set ISO_IR 192, UTF-8 (PS3.3 C.12.1.1.2)."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword in DEFAULT_KEYS[level]:
        tag = tag_for_keyword(keyword)
        assert tag is not None
        ds.add(_element(int(tag), None))
    non_ascii = False
    for tag, value in keys:
        if tag == 0x00080052:
            raise click.BadParameter("the level is set with --level", param_hint="-k")
        ds.add(_element(tag, value))
        non_ascii |= bool(value) and not str(value).isascii()
    if non_ascii and "SpecificCharacterSet" not in ds:
        ds.SpecificCharacterSet = "ISO_IR 192"
    return ds


def resolve_peer(settings: Settings, archive: Archive, name: str) -> Peer:
    """A peer by name (TOML first, then the index), or ``AET@HOST:PORT`` for a node not
    declared anywhere."""
    peer = peer_dir.by_name(settings, name, archive.engine)
    if peer is not None:
        return peer
    match = re.match(r"^([^@]{1,16})@(.+):(\d+)$", name)
    if match:
        return Peer(name=name, aet=match.group(1), host=match.group(2),
                    port=int(match.group(3)))
    known = ", ".join(p.name for p in peer_dir.all_peers(settings, archive.engine))
    raise click.UsageError(f"unknown peer {name!r} (known: {known or 'none'}; add one with "
                           "pacsnode peers add, or give AET@HOST:PORT)")


def _text(elem: DataElement) -> str:
    if elem.VR == "SQ":
        return f"({len(elem.value or [])} items)"
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, MultiValue | list):
        return "\\".join(str(v) for v in value)
    if isinstance(value, bytes):
        return f"({len(value)} bytes)"
    return str(value)


def _json(ds: Dataset) -> dict[str, Any]:
    """DICOM JSON (PS3.18 F.2), keyed by keyword instead of tag where the tag has one."""
    out: dict[str, Any] = {}
    for key, value in ds.to_json_dict(bulk_data_threshold=1 << 20).items():
        out[keyword_for_tag(int(key, 16)) or key] = value
    return out


def _width(text: str) -> int:
    """Terminal columns ``text`` takes (East Asian wide and full-width characters take 2)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns and padded to exactly that."""
    out, used = [], 0
    for c in text:
        w = _width(c)
        if used + w > width:
            break
        out.append(c)
        used += w
    return "".join(out) + " " * (width - used)


def _table(columns: list[int], rows: list[Dataset]) -> list[str]:
    headers = [keyword_for_tag(t) or f"{t >> 16:04X},{t & 0xFFFF:04X}" for t in columns]
    cells = [[_text(ds[t]) if t in ds else "" for t in columns] for ds in rows]
    widths = [min(64, max([_width(h)] + [_width(r[i]) for r in cells]))
              for i, h in enumerate(headers)]
    return ["  ".join(_fit(c, w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in [headers, *cells]]


def _calling(settings: Settings) -> str:
    return settings.aet


net_options = [
    click.option("--aet", help="Our (calling) AE title; also the default move destination "
                 "[PACSNODE]."),
    click.option("--timeout", type=float, default=60.0, show_default=True,
                 help="Seconds to wait for the peer."),
]


def _net_options(func: Any) -> Any:
    for option in reversed(net_options):
        func = option(func)
    return func


@click.command()
@common_options
@_net_options
@click.option("--level", "-l", type=click.Choice(LEVELS, case_sensitive=False),
              default="study", show_default=True, help="Query/Retrieve Level.")
@click.option("--model", "-m", type=click.Choice(list(qr_scu.MODELS), case_sensitive=False),
              default="study", show_default=True, help="Information model: Study Root or "
              "Patient Root.")
@click.option("--key", "-k", "keys", multiple=True, metavar="KEY[=VALUE]",
              help="A matching key (PatientName=DOE*, StudyDate=20200101-, 0008,0060=CT) or, "
              "without =VALUE, a return key. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Matches as DICOM JSON, by keyword.")
@click.argument("peer")
def find(config_file: Path | None, timeout: float, level: str, model: str,
         keys: tuple[str, ...], as_json: bool, peer: str, **cli: Any) -> None:
    """Query PEER (C-FIND) and print the matches."""
    settings = settings_from(config_file, **cli)
    level = level.upper()
    model = model.lower()
    if level not in qr_scu.MODEL_LEVELS[model]:
        raise click.UsageError(f"the {model} root model has no {level} level")
    parsed = [parse_key(k) for k in keys]
    identifier = build_identifier(level, parsed)
    archive = Archive(settings)
    try:
        target = resolve_peer(settings, archive, peer)
    finally:
        archive.close()
    try:
        result = qr_scu.find(target, identifier, model=model, calling_aet=_calling(settings),
                             timeout=timeout)
    except (AssociationFailed, qr_scu.QueryFailed) as exc:
        raise click.ClickException(f"C-FIND {target.aet}@{target.host}:{target.port}: "
                                   f"{exc}") from exc
    if as_json:
        click.echo(json.dumps([_json(m) for m in result.matches], indent=2,
                              ensure_ascii=False))
    else:
        columns = list(dict.fromkeys(
            [int(tag_for_keyword(k) or 0) for k in DEFAULT_KEYS[level]]
            + [tag for tag, _ in parsed if tag not in NOT_SHOWN]))
        for line in _table(columns, result.matches):
            click.echo(line)
        click.echo(f"{len(result.matches)} match{'es' if len(result.matches) != 1 else ''}"
                   + (" (cancelled)" if result.status == qr_scu.CANCEL else ""), err=True)


def _retrieve_options(func: Any) -> Any:
    options = [
        click.option("--study", "study_uid", required=True, help="Study Instance UID."),
        click.option("--series", "series_uid", help="Series Instance UID (only this "
                     "series)."),
        click.option("--model", "-m", type=click.Choice(list(qr_scu.MODELS),
                                                        case_sensitive=False),
                     default="study", show_default=True, help="Information model."),
        click.option("--patient", "patient_id", help="Patient ID (the Patient Root model "
                     "needs it)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _identifier(model: str, study_uid: str, series_uid: str | None,
                patient_id: str | None) -> Dataset:
    if model == "patient" and patient_id is None:
        raise click.UsageError("--model patient needs --patient ID")
    return qr_scu.retrieve_identifier(study_uid, series_uid, patient_id=patient_id)


class _Progress:
    """A tqdm bar fed by the Pending responses' sub-operation counts."""

    def __init__(self, bar: tqdm[Any]) -> None:
        self.bar = bar

    def __call__(self, counts: qr_scu.SubOperations) -> None:
        total = counts.total
        if total is not None and self.bar.total != total:
            self.bar.total = total
        self.bar.n = counts.done
        self.bar.set_postfix(failed=counts.failed or 0, warning=counts.warning or 0,
                             refresh=False)
        self.bar.refresh()


def _summary(what: str, result: qr_scu.RetrieveResult) -> None:
    click.echo(f"{what}: status {qr_scu.describe_status(result.status)}"
               + (f" ({result.comment})" if result.comment else "")
               + f"; completed {result.completed}, failed {result.failed}, "
               f"warning {result.warning}")
    for uid in result.failed_uids:
        click.echo(f"failed: {uid}")


@click.command()
@common_options
@_net_options
@_retrieve_options
@click.option("--to", "destination", help="Move destination AE title (the peer must know "
              "it) [our AE title].")
@click.argument("peer")
def move(config_file: Path | None, timeout: float, study_uid: str, series_uid: str | None,
         model: str, patient_id: str | None, destination: str | None, peer: str,
         **cli: Any) -> None:
    """Have PEER send a study or series to an AE (C-MOVE), by default to us."""
    settings = settings_from(config_file, **cli)
    model = model.lower()
    identifier = _identifier(model, study_uid, series_uid, patient_id)
    archive = Archive(settings)
    try:
        target = resolve_peer(settings, archive, peer)
    finally:
        archive.close()
    destination = destination or settings.aet
    with tqdm(total=None, unit="instance", disable=None, file=sys.stderr) as bar:
        try:
            result = qr_scu.move(target, identifier, destination, model=model,
                                 calling_aet=_calling(settings), timeout=timeout,
                                 on_progress=_Progress(bar))
        except AssociationFailed as exc:
            raise click.ClickException(f"C-MOVE {target.aet}@{target.host}:{target.port}: "
                                       f"{exc}") from exc
    _summary(f"C-MOVE from {target.aet} to {destination}", result)
    if not result.ok:
        sys.exit(1)


@click.command()
@common_options
@_net_options
@_retrieve_options
@click.argument("peer")
def get(config_file: Path | None, timeout: float, study_uid: str, series_uid: str | None,
        model: str, patient_id: str | None, peer: str, **cli: Any) -> None:
    """Fetch a study or series from PEER into the archive (C-GET, one association)."""
    settings = settings_from(config_file, **cli)
    model = model.lower()
    identifier = _identifier(model, study_uid, series_uid, patient_id)
    archive = Archive(settings)
    try:
        target = resolve_peer(settings, archive, peer)
        with tqdm(total=None, unit="instance", disable=None, file=sys.stderr) as bar:
            progress = _Progress(bar)

            def on_stored(outcome: IngestResult) -> None:
                if not outcome.ok:
                    tqdm.write(f"rejected {outcome.sop_instance_uid}: {outcome.reason}: "
                               f"{outcome.detail}", file=sys.stderr)

            try:
                result = qr_scu.get(target, identifier, archive, model=model,
                                    calling_aet=_calling(settings), timeout=timeout,
                                    on_progress=progress, on_stored=on_stored)
            except (AssociationFailed, qr_scu.QueryFailed) as exc:
                raise click.ClickException(f"C-GET {target.aet}@{target.host}:"
                                           f"{target.port}: {exc}") from exc
    finally:
        archive.close()
    _summary(f"C-GET from {target.aet}", result)
    parts = [f"{result.received[o.value]} {o.value}" for o in Outcome
             if result.received[o.value] or o in (Outcome.STORED, Outcome.REJECTED)]
    click.echo("received: " + ", ".join(parts))
    for uid, why in result.rejected:
        click.echo(f"rejected {uid}: {why}")
    if not result.ok or result.rejected:
        sys.exit(1)


COMMANDS = [find, move, get]
