"""The REST API's peers: ``/api/peers`` — the DICOM nodes pacsnode sends to and queries
(:mod:`pacsnode.core.peers`; the same list as ``pacsnode peers``). Peers added here are
kept in the index, so every node sharing the database sees them; peers of the TOML file
are listed too (``source: "config"``) and cannot be changed here.
"""

from __future__ import annotations

import time

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from pacsnode.config import Peer
from pacsnode.core import peers
from pacsnode.core.archive import Archive
from pacsnode.dimse import scu
from pacsnode.web.problems import Problem

router = APIRouter(prefix="/api", tags=["Peers"])


class PeerIn(BaseModel):
    """A peer to add."""

    name: str = Field(description="The name pacsnode knows it by")
    aet: str = Field(description="Its AE title")
    host: str
    port: int = Field(ge=1, le=65535)


class PeerOut(PeerIn):
    """A peer as listed."""

    source: str = Field(description="'config' (the TOML file) or 'index'")
    shadowed: bool = Field(False, description="an index peer hidden by a TOML peer of the "
                           "same name")


class EchoResult(BaseModel):
    """The outcome of a C-ECHO to a peer."""

    ok: bool
    status: int | None = None
    milliseconds: float
    detail: str = ""


def _out(entry: peers.PeerEntry) -> PeerOut:
    p = entry.peer
    return PeerOut(name=p.name, aet=p.aet, host=p.host, port=p.port,
                   source=entry.source.lower(), shadowed=entry.shadowed)


def _archive(request: Request) -> Archive:
    archive: Archive = request.app.state.archive
    return archive


@router.get("/peers", summary="Every peer, from the TOML file and the index")
def list_peers(request: Request) -> list[PeerOut]:
    archive = _archive(request)
    return [_out(e) for e in peers.entries(archive.settings, archive.engine)]


def _find(request: Request, name: str) -> Peer:
    archive = _archive(request)
    found = peers.by_name(archive.settings, name, archive.engine)
    if found is None:
        raise Problem(404, f"no peer called {name!r}")
    return found


@router.get("/peers/{name}", summary="One peer")
def get_peer(request: Request, name: str) -> PeerOut:
    peer = _find(request, name)
    source = "config" if name in _archive(request).settings.peers else "index"
    return PeerOut(name=peer.name, aet=peer.aet, host=peer.host, port=peer.port,
                   source=source, shadowed=False)


@router.post("/peers", status_code=201, summary="Add a peer (kept in the index)")
def add_peer(request: Request, body: PeerIn, response: Response) -> PeerOut:
    archive = _archive(request)
    if body.name in archive.settings.peers:
        raise Problem(409, f"peer {body.name!r} is declared in the configuration file; "
                      "change it there")
    try:
        peer = peers.add(archive.engine, Peer(body.name, body.aet, body.host, body.port))
    except peers.PeerExists as exc:
        raise Problem(409, str(exc)) from None
    except peers.PeerError as exc:
        raise Problem(400, str(exc)) from None
    response.headers["Location"] = f"/api/peers/{peer.name}"
    return PeerOut(name=peer.name, aet=peer.aet, host=peer.host, port=peer.port,
                   source="index", shadowed=False)


@router.delete("/peers/{name}", status_code=204, summary="Remove an index peer")
def remove_peer(request: Request, name: str) -> Response:
    archive = _archive(request)
    if name in archive.settings.peers:
        raise Problem(409, f"peer {name!r} is declared in the configuration file; remove it "
                      "there")
    if not peers.remove(archive.engine, name):
        raise Problem(404, f"no peer called {name!r} in the index")
    return Response(status_code=204)


@router.post("/peers/{name}/echo", summary="C-ECHO the peer (PS3.4 Annex A)")
async def echo_peer(request: Request, name: str) -> EchoResult:
    peer = await anyio.to_thread.run_sync(_find, request, name)
    archive = _archive(request)
    t0 = time.perf_counter()
    try:
        status = await anyio.to_thread.run_sync(
            lambda: scu.echo(peer.host, peer.port, calling_aet=archive.settings.aet,
                             called_aet=peer.aet, timeout=10.0))
    except (ConnectionError, OSError) as exc:
        return EchoResult(ok=False, milliseconds=(time.perf_counter() - t0) * 1000,
                          detail=str(exc))
    return EchoResult(ok=status == 0, status=status,
                      milliseconds=(time.perf_counter() - t0) * 1000,
                      detail="" if status == 0 else f"C-ECHO status 0x{status:04X}")
