"""``pacsnode peers add|list|remove``: the peer directory kept in the index (every node
sharing the database sees it), listed together with the TOML ``[peers.NAME]`` entries."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from pacsnode.cli.options import common_options, settings_from
from pacsnode.config import Peer
from pacsnode.core import peers as peer_dir
from pacsnode.core.archive import Archive


def _open(config_file: Path | None, **cli: Any) -> Archive:
    return Archive(settings_from(config_file, **cli))


@click.group("peers")
def peers() -> None:
    """Other DICOM nodes: list them, add or remove the ones kept in the index. A peer
    declared in the TOML file ([peers.NAME]) wins over an index peer of the same name."""


@peers.command("add")
@common_options
@click.argument("name")
@click.argument("aet")
@click.argument("host")
@click.argument("port", type=int)
def add(config_file: Path | None, name: str, aet: str, host: str, port: int,
        **cli: Any) -> None:
    """Add peer NAME (AE title AET at HOST:PORT) to the index."""
    archive = _open(config_file, **cli)
    try:
        try:
            peer = peer_dir.validate(name, aet, host, port)
        except peer_dir.PeerError as exc:
            raise click.UsageError(str(exc)) from exc
        try:
            peer_dir.add(archive.engine, peer)
        except peer_dir.PeerExists as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"added peer {peer.name}: {peer.aet}@{peer.host}:{peer.port}")
        config_peer = archive.settings.peers.get(peer.name)
        if config_peer is not None:
            click.echo(f"note: the configuration file declares peer {peer.name} "
                       f"({config_peer.aet}@{config_peer.host}:{config_peer.port}); that "
                       "entry wins while it is there", err=True)
    finally:
        archive.close()


def _row(entry: peer_dir.PeerEntry) -> dict[str, Any]:
    p: Peer = entry.peer
    return {"name": p.name, "aet": p.aet, "host": p.host, "port": p.port,
            "source": entry.source, "shadowed": entry.shadowed,
            "created_at": entry.created_at}


@peers.command("list")
@common_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(config_file: Path | None, as_json: bool, **cli: Any) -> None:
    """List the peers of the TOML file and of the index."""
    archive = _open(config_file, **cli)
    try:
        entries = peer_dir.entries(archive.settings, archive.engine)
    finally:
        archive.close()
    if as_json:
        click.echo(json.dumps([_row(e) for e in entries], indent=2))
        return
    if not entries:
        click.echo("no peers (add one with: pacsnode peers add NAME AET HOST PORT)")
        return
    width = max(len(e.peer.name) for e in entries)
    for e in entries:
        p = e.peer
        since = ("" if e.created_at is None else " added " + dt.datetime.fromtimestamp(
            e.created_at).isoformat(" ", "seconds"))
        note = "  (hidden by the config entry)" if e.shadowed else ""
        click.echo(f"{p.name:<{width}}  {p.aet:<16}  {p.host}:{p.port}  [{e.source}"
                   f"{since}]{note}")


@peers.command("remove")
@common_options
@click.argument("name")
def remove(config_file: Path | None, name: str, **cli: Any) -> None:
    """Remove peer NAME from the index."""
    archive = _open(config_file, **cli)
    try:
        removed = peer_dir.remove(archive.engine, name)
        in_config = name in archive.settings.peers
    finally:
        archive.close()
    if removed:
        click.echo(f"removed peer {name}")
        if in_config:
            click.echo(f"note: peer {name} is still declared in the configuration file",
                       err=True)
        return
    if in_config:
        raise click.ClickException(f"peer {name} is declared in the configuration file, "
                                   "not in the index: edit the file to remove it")
    raise click.ClickException(f"no peer {name} in the index")


COMMANDS = [peers]
