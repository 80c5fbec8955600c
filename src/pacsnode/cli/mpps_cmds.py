"""``pacsnode mpps list|show``: the Modality Performed Procedure Steps modalities reported
with N-CREATE/N-SET (PS3.4 F.7; :mod:`pacsnode.core.mpps`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from pacsnode.cli.options import common_options, settings_from
from pacsnode.cli.tables import echo_table
from pacsnode.core import mpps
from pacsnode.core.archive import Archive

COLUMNS = [("status", "STATUS"), ("start", "START"), ("station_aet", "STATION"),
           ("modality", "MOD"), ("patient_id", "PATIENT ID"), ("accession", "ACCESSION"),
           ("referenced_instances", "IMAGES"), ("sop_instance_uid", "MPPS UID")]


@click.group("mpps")
def mpps_group() -> None:
    """Performed procedure steps (MPPS) that modalities reported: IN PROGRESS, COMPLETED
    or DISCONTINUED, with the worklist items and the study they belong to."""


@mpps_group.command("list")
@common_options
@click.option("--status", type=click.Choice(["in-progress", "completed", "discontinued"]),
              help="Only steps in this status.")
@click.option("--study", help="Only steps of this Study Instance UID.")
@click.option("--limit", type=int, default=100, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(config_file: Path | None, status: str | None, study: str | None, limit: int,
          as_json: bool, **cli: Any) -> None:
    """The performed procedure steps, newest first."""
    archive = Archive(settings_from(config_file, **cli))
    try:
        steps = mpps.list_steps(archive.engine, status=(status or "").replace("-", " "),
                                study=study, limit=limit)
    finally:
        archive.close()
    rows = [step.summary() for step in steps]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no performed procedure steps")
        return
    echo_table(rows, COLUMNS)


@mpps_group.command("show")
@common_options
@click.argument("uid", metavar="MPPS_UID")
def show(config_file: Path | None, uid: str, **cli: Any) -> None:
    """One performed procedure step: its summary and its DICOM JSON."""
    archive = Archive(settings_from(config_file, **cli))
    try:
        step = mpps.get(archive.engine, uid)
    finally:
        archive.close()
    if step is None:
        raise click.ClickException(f"no performed procedure step {uid}")
    click.echo(json.dumps({**step.summary(), "attributes": step.attrs}, indent=2,
                          ensure_ascii=False))


COMMANDS = [mpps_group]
