"""``pacsnode``: serve, import, ls, show, check, delete, echo, send, find, move, get,
peers, worklist, mpps, synth."""

from __future__ import annotations

import click

from pacsnode import __version__
from pacsnode.cli import (
    archive_cmds,
    mpps_cmds,
    network_cmds,
    peer_cmds,
    qr_cmds,
    serve,
    synth,
    worklist_cmds,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pacsnode")
def cli() -> None:
    """pacsnode: a DICOM archive (PACS). Settings come from flags, then PACSNODE_*
    environment variables, then a TOML file (--config), then defaults."""


cli.add_command(serve.serve)
for command in (archive_cmds.COMMANDS + network_cmds.COMMANDS + qr_cmds.COMMANDS
                + peer_cmds.COMMANDS + worklist_cmds.COMMANDS + mpps_cmds.COMMANDS):
    cli.add_command(command)
cli.add_command(synth.synth)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
