"""``pacsnode echo`` and ``pacsnode send``: pacsnode as a DICOM client."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from pacsnode.cli.files import expand
from pacsnode.cli.options import common_options, settings_from
from pacsnode.dimse import scu

aet_options = [
    click.option("--aet", "calling_aet", help="Our (calling) AE title [PACSNODE]."),
    click.option("--called-aet", "-c", default="ANY-SCP", show_default=True,
                 help="The peer's AE title."),
    click.option("--timeout", type=float, default=30.0, show_default=True,
                 help="Seconds to wait for the peer."),
]


def _aet_options(func: Any) -> Any:
    for option in reversed(aet_options):
        func = option(func)
    return func


@click.command()
@common_options
@_aet_options
@click.argument("host")
@click.argument("port", type=int)
def echo(config_file: Path | None, calling_aet: str | None, called_aet: str, timeout: float,
         host: str, port: int, **cli: Any) -> None:
    """Verify a DICOM node answers (C-ECHO)."""
    settings = settings_from(config_file, **cli)
    try:
        status = scu.echo(host, port, calling_aet=calling_aet or settings.aet,
                          called_aet=called_aet, timeout=timeout)
    except scu.AssociationFailed as exc:
        raise click.ClickException(str(exc)) from exc
    if status != 0:
        raise click.ClickException(f"C-ECHO answered status 0x{status:04X}")
    click.echo(f"C-ECHO {called_aet}@{host}:{port}: success")


@click.command()
@common_options
@_aet_options
@click.option("--quiet", "-q", is_flag=True, help="Only the summary, no per-file lines.")
@click.argument("host")
@click.argument("port", type=int)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def send(config_file: Path | None, calling_aet: str | None, called_aet: str, timeout: float,
         quiet: bool, host: str, port: int, paths: tuple[Path, ...], **cli: Any) -> None:
    """Send files and folders (recursively) to a DICOM node with C-STORE, as stored."""
    settings = settings_from(config_file, **cli)
    files = list(expand(paths))
    tally: Counter[str] = Counter()
    with tqdm(total=len(files), unit="file", disable=None, file=sys.stderr) as bar:

        def on_result(result: scu.SendResult) -> None:
            bar.update(1)
            if result.ok:
                tally["sent"] += 1
            else:
                tally["failed"] += 1
            if not quiet:
                status = "no status" if result.status is None else f"0x{result.status:04X}"
                line = f"{status} {result.path}" + (f": {result.detail}" if result.detail
                                                    else "")
                tqdm.write(line, file=sys.stdout)

        try:
            scu.send(host, port, files, calling_aet=calling_aet or settings.aet,
                     called_aet=called_aet, timeout=timeout, on_result=on_result)
        except scu.AssociationFailed as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"sent {tally['sent']}, failed {tally['failed']} of {len(files)} files")
    if tally["failed"]:
        sys.exit(1)


COMMANDS = [echo, send]
