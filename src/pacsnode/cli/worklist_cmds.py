"""``pacsnode worklist add|list|cancel|import``: the Modality Worklist kept in the index
(:mod:`pacsnode.core.worklist`), which modalities query with C-FIND (PS3.4 Annex K) on the
DICOM port of ``pacsnode serve``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from pacsnode.cli.files import expand
from pacsnode.cli.options import common_options, settings_from
from pacsnode.cli.tables import echo_table
from pacsnode.core import worklist
from pacsnode.core.archive import Archive


def _open(config_file: Path | None, **cli: Any) -> Archive:
    return Archive(settings_from(config_file, **cli))


def _describe(item: worklist.WorklistItem) -> str:
    s = item.summary()
    when = f"{s['start_date']} {s['start_time'][:4]}".strip()
    return (f"{s['patient_name']} ({s['patient_id']}), {s['modality']} at {s['station_aet']} "
            f"{when}, accession {s['accession'] or '-'}, SPS ID {s['sps_id']}, "
            f"study {s['study_instance_uid']}")


@click.group("worklist")
def worklist_group() -> None:
    """The Modality Worklist: scheduled procedure steps that modalities query (C-FIND,
    Modality Worklist Information Model). Only SCHEDULED and IN PROGRESS items answer."""


@worklist_group.command("add")
@common_options
@click.option("--patient-name", required=True, help="Patient's Name, e.g. DOE^JOHN.")
@click.option("--patient-id", required=True, help="Patient ID.")
@click.option("--birth-date", default="", help="Patient's Birth Date (YYYYMMDD).")
@click.option("--sex", default="", type=click.Choice(["", "M", "F", "O"]),
              help="Patient's Sex.")
@click.option("--accession", default="", help="Accession Number.")
@click.option("--modality", required=True, help="Modality, e.g. CT.")
@click.option("--station-aet", required=True, help="Scheduled Station AE Title.")
@click.option("--start", required=True, metavar="YYYYMMDD[HHMM]",
              help="Scheduled Procedure Step Start Date and Time (time 0000 if left out).")
@click.option("--procedure", default="", help="Requested Procedure Description (also the "
              "Scheduled Procedure Step Description).")
@click.option("--physician", default="", help="Scheduled Performing Physician's Name.")
@click.option("--referring-physician", default="", help="Referring Physician's Name.")
@click.option("--station-name", default="", help="Scheduled Station Name.")
@click.option("--location", default="", help="Scheduled Procedure Step Location.")
@click.option("--procedure-id", default="", help="Requested Procedure ID [generated].")
@click.option("--sps-id", default="", help="Scheduled Procedure Step ID [generated].")
@click.option("--study-uid", default="", help="Study Instance UID [generated].")
@click.option("--json", "as_json", is_flag=True, help="Print the new item as JSON.")
def add(config_file: Path | None, patient_name: str, patient_id: str, birth_date: str,
        sex: str, accession: str, modality: str, station_aet: str, start: str,
        procedure: str, physician: str, referring_physician: str, station_name: str,
        location: str, procedure_id: str, sps_id: str, study_uid: str, as_json: bool,
        **cli: Any) -> None:
    """Add a scheduled procedure step to the worklist."""
    archive = _open(config_file, **cli)
    try:
        try:
            ds = worklist.dataset_from_fields(
                patient_name=patient_name, patient_id=patient_id, modality=modality,
                station_aet=station_aet, start=start, birth_date=birth_date, sex=sex,
                accession=accession, procedure=procedure, physician=physician,
                referring_physician=referring_physician, station_name=station_name,
                location=location, requested_procedure_id=procedure_id, sps_id=sps_id,
                study_instance_uid=study_uid)
            item = worklist.add(archive.engine, ds)
        except worklist.WorklistError as exc:
            raise click.UsageError(str(exc)) from exc
    finally:
        archive.close()
    if as_json:
        click.echo(json.dumps(item.summary(), indent=2, ensure_ascii=False))
    else:
        click.echo(f"added worklist item {item.pk}: {_describe(item)}")


COLUMNS = (("id", "ID"), ("state", "STATE"), ("start_date", "DATE"), ("start_time", "TIME"),
           ("station_aet", "STATION AET"), ("modality", "MOD"), ("patient_id", "PATIENT ID"),
           ("patient_name", "PATIENT NAME"), ("accession", "ACCESSION"),
           ("procedure", "PROCEDURE"))


@worklist_group.command("list")
@common_options
@click.option("--all", "show_all", is_flag=True,
              help="Include COMPLETED, DISCONTINUED and CANCELLED items.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(config_file: Path | None, show_all: bool, as_json: bool, **cli: Any) -> None:
    """List the worklist in scheduled order (SCHEDULED and IN PROGRESS items unless
    --all)."""
    archive = _open(config_file, **cli)
    try:
        items = worklist.list_items(archive.engine,
                                    states=None if show_all else worklist.ACTIVE)
    finally:
        archive.close()
    rows = [item.summary() for item in items]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("the worklist is empty" + ("" if show_all else
                                              " (--all shows finished items too)"))
        return
    echo_table(rows, COLUMNS)


@worklist_group.command("cancel")
@common_options
@click.argument("item_id", metavar="ID", type=int)
def cancel(config_file: Path | None, item_id: int, **cli: Any) -> None:
    """Cancel worklist item ID: it no longer answers modalities' queries."""
    archive = _open(config_file, **cli)
    try:
        worklist.cancel(archive.engine, item_id)
    except worklist.WorklistError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        archive.close()
    click.echo(f"cancelled worklist item {item_id}")


@worklist_group.command("import")
@common_options
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def import_(config_file: Path | None, paths: tuple[Path, ...], **cli: Any) -> None:
    """Add the items of DCMTK worklist files (FILE.wl, or folders of them; DICOM data sets
    with or without file meta)."""
    archive = _open(config_file, **cli)
    added = rejected = 0
    try:
        for path in expand(paths):
            try:
                item = worklist.import_file(archive.engine, path)
            except worklist.WorklistError as exc:
                rejected += 1
                click.echo(f"rejected {exc}", err=True)
                continue
            added += 1
            click.echo(f"added worklist item {item.pk} from {path}: {_describe(item)}")
    finally:
        archive.close()
    click.echo(f"{added} added, {rejected} rejected")
    if rejected:
        raise SystemExit(1)


COMMANDS = [worklist_group]
