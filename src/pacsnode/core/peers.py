"""The peers a node knows: other DICOM application entities it may query, retrieve from and
send to (C-MOVE destinations).

Two sources, looked up together:

* the TOML configuration (``[peers.NAME]`` tables, :attr:`Settings.peers`), read at start;
* the index database (table ``peer``, added with ``pacsnode peers add``), so that every node
  sharing the database sees a peer as soon as it is added, without a restart.

A name declared in both places means the TOML entry: the configuration file wins. Every
lookup that is given the archive's ``engine`` consults both; without it only the TOML peers.

An AE title is 1 to 16 characters of the default character repertoire without backslash or
control characters; leading and trailing spaces are not significant (PS3.5 6.2, VR AE).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pacsnode.config import Peer, Settings
from pacsnode.index.engine import read_transaction, write_transaction
from pacsnode.index.schema import peer as peer_table

CONFIG = "config"
INDEX = "index"
MAX_NAME = 64


class PeerError(ValueError):
    """A peer cannot be added or removed (the message says why)."""


class PeerExists(PeerError):
    """A peer of that name is already in the index."""


@dataclass(frozen=True)
class PeerEntry:
    """One peer as listed: where it is declared, and whether a TOML peer of the same name
    hides it (an index entry that is ``shadowed`` is never used)."""

    peer: Peer
    source: str  # CONFIG or INDEX
    created_at: float | None = None
    shadowed: bool = False


def validate(name: str, aet: str, host: str, port: int) -> Peer:
    """A :class:`Peer` from user input, or :class:`PeerError` saying what is wrong."""
    name = name.strip()
    aet = aet.strip()
    host = host.strip()
    if not name or len(name) > MAX_NAME:
        raise PeerError(f"peer name must be 1 to {MAX_NAME} characters")
    if not 1 <= len(aet) <= 16:
        raise PeerError("AE title must be 1 to 16 characters (PS3.5 6.2, VR AE)")
    if "\\" in aet or any(ord(c) < 0x20 or ord(c) > 0x7E for c in aet):
        raise PeerError("AE title must be printable ASCII without backslash (PS3.5 6.2)")
    if not host or len(host) > 255:
        raise PeerError("host must be 1 to 255 characters")
    if not 1 <= port <= 65535:
        raise PeerError("port must be between 1 and 65535")
    return Peer(name=name, aet=aet, host=host, port=port)


def _row_peer(row: sa.RowMapping) -> Peer:
    return Peer(name=row["name"], aet=row["aet"], host=row["host"], port=int(row["port"]))


def stored(engine: Engine) -> list[PeerEntry]:
    """The peers in the index, by name."""
    with read_transaction(engine) as conn:
        rows = conn.execute(sa.select(peer_table).order_by(peer_table.c.name)).mappings().all()
    return [PeerEntry(_row_peer(r), INDEX, float(r["created_at"])) for r in rows]


def entries(settings: Settings, engine: Engine | None = None) -> list[PeerEntry]:
    """Every peer from both sources, by name (a TOML peer before the index peer of the same
    name, which is marked ``shadowed``)."""
    out = [PeerEntry(p, CONFIG) for p in settings.peers.values()]
    if engine is not None:
        out += [PeerEntry(e.peer, INDEX, e.created_at, shadowed=e.peer.name in settings.peers)
                for e in stored(engine)]
    return sorted(out, key=lambda e: (e.peer.name, e.source != CONFIG))


def all_peers(settings: Settings, engine: Engine | None = None) -> list[Peer]:
    """Every peer in use, by name: the TOML peers and (given ``engine``) the index peers
    whose name no TOML peer has."""
    return [e.peer for e in entries(settings, engine) if not e.shadowed]


def by_name(settings: Settings, name: str, engine: Engine | None = None) -> Peer | None:
    """The peer called ``name``: the ``[peers.NAME]`` entry, else (given ``engine``) the
    index entry, if any."""
    found = settings.peers.get(name)
    if found is not None or engine is None:
        return found
    with read_transaction(engine) as conn:
        row = conn.execute(sa.select(peer_table).where(peer_table.c.name == name)
                           ).mappings().first()
    return _row_peer(row) if row is not None else None


def by_aet(settings: Settings, aet: str, engine: Engine | None = None) -> Peer | None:
    """The peer whose AE title is ``aet`` (a C-MOVE destination), if any: TOML peers first
    (by name), then (given ``engine``) index peers by name. Leading and trailing spaces are
    not significant (PS3.5 6.2)."""
    aet = aet.strip()
    for peer in sorted(settings.peers.values(), key=lambda p: p.name):
        if peer.aet == aet:
            return peer
    if engine is None:
        return None
    with read_transaction(engine) as conn:
        rows = conn.execute(sa.select(peer_table).where(peer_table.c.aet == aet)
                            .order_by(peer_table.c.name)).mappings().all()
    for row in rows:
        if row["name"] not in settings.peers:
            return _row_peer(row)
    return None


def by_aet_in(settings: Settings, engine: Engine, aet: str) -> Peer | None:
    """:func:`by_aet` over both sources (the TOML file and the index of ``engine``)."""
    return by_aet(settings, aet, engine)


def add(engine: Engine, peer: Peer) -> Peer:
    """Store ``peer`` in the index (checked with :func:`validate`); :class:`PeerExists` if the
    index already has a peer of that name."""
    peer = validate(peer.name, peer.aet, peer.host, peer.port)
    try:
        with write_transaction(engine) as conn:
            exists = conn.execute(sa.select(peer_table.c.pk)
                                  .where(peer_table.c.name == peer.name)).first()
            if exists is not None:
                raise PeerExists(f"peer {peer.name!r} already exists; remove it first")
            conn.execute(peer_table.insert().values(
                name=peer.name, aet=peer.aet, host=peer.host, port=peer.port,
                created_at=time.time()))
    except sa.exc.IntegrityError as exc:  # another process added it at the same instant
        raise PeerExists(f"peer {peer.name!r} already exists; remove it first") from exc
    return peer


def remove(engine: Engine, name: str) -> bool:
    """Delete the index peer called ``name``; False if the index has none."""
    with write_transaction(engine) as conn:
        result = conn.execute(peer_table.delete().where(peer_table.c.name == name))
    return bool(result.rowcount)
