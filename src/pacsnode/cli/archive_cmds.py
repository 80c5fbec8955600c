"""Commands working on the archive directly: import, ls, show, check, delete."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from pacsnode.cli.files import expand
from pacsnode.cli.options import common_options, settings_from
from pacsnode.core.archive import Archive
from pacsnode.core.results import Node, Outcome


def _open(config_file: Path | None, **cli: Any) -> Archive:
    return Archive(settings_from(config_file, **cli))


@click.command("import")
@common_options
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def import_(config_file: Path | None, paths: tuple[Path, ...], **cli: Any) -> None:
    """Load DICOM files and folders (recursively) into the archive."""
    archive = _open(config_file, **cli)
    files = list(expand(paths))
    tally: Counter[Outcome] = Counter()
    rejected: list[tuple[Path, str]] = []
    with tqdm(total=len(files), unit="file", disable=None, file=sys.stderr) as bar:
        for path in files:
            try:
                result = archive.ingest(path)
            except OSError as exc:
                tally[Outcome.REJECTED] += 1
                rejected.append((path, f"cannot read: {exc.strerror}"))
            else:
                tally[result.outcome] += 1
                if not result.ok:
                    rejected.append((path, f"{result.reason}: {result.detail}"))
            bar.update(1)
    for path, why in rejected:
        click.echo(f"rejected {path}: {why}")
    parts = [f"{tally[o]} {o.value}" for o in Outcome if tally[o] or o in
             (Outcome.STORED, Outcome.ALREADY_PRESENT, Outcome.REJECTED)]
    click.echo(f"{len(files)} files: " + ", ".join(parts))
    archive.close()


def _node_json(node: Node) -> dict[str, Any]:
    return {"level": node.level, **node.columns, "attributes": node.attributes}


@click.command("ls")
@common_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def ls(config_file: Path | None, as_json: bool, **cli: Any) -> None:
    """List patients → studies → series, with counts."""
    archive = _open(config_file, **cli)
    tree = []
    for pat in archive.patients():
        p = pat.columns
        studies = []
        for st in archive.studies(p["pk"]):
            s = st.columns
            series = [se.columns for se in archive.series(s["study_instance_uid"])]
            studies.append((s, series))
        tree.append((p, studies))
    if as_json:
        out = [{**p, "studies": [{**s, "series": series} for s, series in studies]}
               for p, studies in tree]
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    for p, studies in tree:
        click.echo(f"{p['patient_id'] or '(no ID)'}  {p['patient_name']}  "
                   f"{p['patient_birth_date']} {p['patient_sex']}  "
                   f"[{p['num_studies']} studies, {p['num_series']} series, "
                   f"{p['num_instances']} instances]")
        for s, series in studies:
            click.echo(f"  {s['study_date'] or '--------'} {s['study_instance_uid']}  "
                       f"{s['study_description']}  {s['modalities_in_study']}  "
                       f"[{s['num_series']} series, {s['num_instances']} instances]")
            for se in series:
                number = "" if se["series_number"] is None else se["series_number"]
                click.echo(f"    {se['modality']:<3} #{number} {se['series_instance_uid']}  "
                           f"{se['series_description']}  [{se['num_instances']} instances]")
    counts = archive.counts()
    click.echo(f"{counts['patients']} patients, {counts['studies']} studies, "
               f"{counts['series']} series, {counts['instances']} instances")


@click.command()
@common_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.argument("uid")
def show(config_file: Path | None, as_json: bool, uid: str, **cli: Any) -> None:
    """Show one patient (by Patient ID), study, series or instance as indexed."""
    archive = _open(config_file, **cli)
    node = archive.find(uid)
    if node is None:
        raise click.ClickException(f"{uid}: not in the archive")
    if as_json:
        click.echo(json.dumps(_node_json(node), indent=2, ensure_ascii=False))
        return
    click.echo(f"{node.level} {uid}")
    for key, value in node.columns.items():
        click.echo(f"  {key}: {value}")
    click.echo("  attributes:")
    from pydicom.datadict import keyword_for_tag

    for tag, elem in node.attributes.items():
        name = keyword_for_tag(int(tag, 16)) or "(private)"
        value = elem.get("Value", elem.get("BulkDataURI", ""))
        text = json.dumps(value, ensure_ascii=False)
        click.echo(f"    ({tag[:4]},{tag[4:]}) {elem.get('vr', '')} {name}: "
                   f"{text[:100]}")


@click.command()
@common_options
@click.option("--repair", is_flag=True, help="Fix what can be fixed (see docs).")
@click.option("--verify-hashes", is_flag=True, help="Also re-hash every file (slow).")
def check(config_file: Path | None, repair: bool, verify_hashes: bool, **cli: Any) -> None:
    """Compare index and files: missing, orphan, size/hash mismatches."""
    archive = _open(config_file, **cli)
    with tqdm(unit="item", disable=None, file=sys.stderr) as bar:
        report = archive.check(repair=repair, verify_hashes=verify_hashes, progress=bar)
    for p in report.problems:
        action = f" -> {p.action}" if p.action else ""
        detail = f" ({p.detail})" if p.detail else ""
        click.echo(f"{p.kind}: {p.key} {p.sop_instance_uid}{detail}{action}")
    click.echo(f"checked {report.instances} indexed instances and {report.files} files: "
               f"{len(report.problems)} problem(s)")
    if not report.ok:
        sys.exit(1)


@click.command()
@common_options
@click.argument("uids", nargs=-1, required=True)
def delete(config_file: Path | None, uids: tuple[str, ...], **cli: Any) -> None:
    """Delete patients (by Patient ID), studies, series or instances, files included."""
    archive = _open(config_file, **cli)
    missing = 0
    for uid in uids:
        result = archive.delete(uid)
        if result is None:
            click.echo(f"{uid}: not in the archive", err=True)
            missing += 1
        else:
            click.echo(f"deleted {result.level.lower()} {uid}: {result.instances} instances")
    if missing:
        sys.exit(1)


COMMANDS = [import_, ls, show, check, delete]
