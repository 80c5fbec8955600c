"""``pacsnode serve``: run the node — the DICOM listener and, in the same process, the web
front end (DICOMweb, REST API) on ``--http-port``."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click
from pynetdicom.transport import AssociationServer

from pacsnode.cli.options import common_options, settings_from
from pacsnode.config import ConfigError
from pacsnode.core import index_flush
from pacsnode.core.archive import Archive
from pacsnode.core.consistency import STALE_TEMP_SECONDS
from pacsnode.dimse import server, workers
from pacsnode.hooks.study_complete import StudyCompleteWatcher

log = logging.getLogger("pacsnode.serve")


@click.command()
@common_options
@click.option("--aet", help="Our AE title [PACSNODE].")
@click.option("--dicom-host", help="Address to listen on [0.0.0.0].")
@click.option("--dicom-port", type=int, help="DICOM port [11112].")
@click.option("--http-host", help="Address the web front end listens on [0.0.0.0].")
@click.option("--http-port", type=int, help="HTTP port of DICOMweb, the REST API and the UI "
              "[8042].")
@click.option("--public-url", help="Base URL clients reach the web front end at, for the "
              "URLs in answers (behind a reverse proxy) [from the request].")
@click.option("--cors-origins", help="Origins allowed to call the web front end from a "
              "browser, comma-separated, or '*' [none].")
@click.option("--index-sync", type=click.Choice(["periodic", "commit"]),
              help="SQLite: flush ingest's index commits about once a second and complete "
              "the index from the files after a power cut (periodic), or flush each before "
              "answering (commit) [periodic].")
@click.option("--duplicate-policy", type=click.Choice(["replace", "keep", "reject"]),
              help="A SOP Instance UID received again with different content [replace].")
@click.option("--max-associations", type=int, help="Simultaneous associations [100].")
@click.option("--max-pdu-size", type=int, help="Largest PDU we accept, bytes [4194304].")
@click.option("--require-called-aet/--any-called-aet", default=None,
              help="Refuse associations not addressed to our AE title [any].")
@click.option("--restrict-qr-to-peers/--qr-from-anyone", default=None,
              help="Accept query/retrieve associations only from declared peers [anyone].")
@click.option("--check-peer-host/--any-peer-host", default=None,
              help="With --restrict-qr-to-peers, also require the peer's host [any].")
@click.option("--acse-timeout", type=float, help="Seconds to wait for association "
              "messages [30].")
@click.option("--dimse-timeout", type=float, help="Seconds to wait for DIMSE messages [60].")
@click.option("--network-timeout", type=float, help="Seconds an idle connection is kept [60].")
@click.option("--workers", type=int, help="Receiving processes; 0 = one per CPU, at most 4 [0].")
@click.option("--hl7-port", type=int, help="MLLP port receiving HL7 orders (ORM^O01, OMI^O23) "
              "into the Modality Worklist; 0 = none [0].")
@click.option("--hl7-station-aet", help="Scheduled Station AE Title of HL7 orders that name "
              "none [the order's modality].")
def serve(config_file: Path | None, **cli: Any) -> None:
    """Run the PACS: store (C-STORE), answer queries and retrieves (C-FIND, C-MOVE, C-GET)
    and C-ECHO until stopped (Ctrl-C, SIGTERM)."""
    settings = settings_from(config_file, **cli)
    archive = Archive(settings, migrate_isolated=True)  # Alembic stays out of serve
    try:
        study_complete = StudyCompleteWatcher(archive, settings)
    except ConfigError as exc:
        archive.close()
        raise click.ClickException(str(exc)) from exc
    for temp in archive.store.stale_temps(STALE_TEMP_SECONDS):
        archive.store.discard_temp(temp)
    archive.finish_deletes()  # files a crash left behind in the middle of a delete
    flusher = index_flush.IndexFlusher(archive, owner=True)
    flusher.start()  # after an unclean stop, completes the index first
    counts = archive.counts()
    log.info("archive %s (index %s): %d patients, %d studies, %d instances",
             settings.data_dir.resolve(), archive.engine.url.render_as_string(
                 hide_password=True), counts["patients"], counts["studies"],
             counts["instances"])
    stop = threading.Event()
    processes = settings.receiving_processes
    pool: workers.WorkerPool | None = None
    dicom: AssociationServer | None
    if processes > 1:
        sock = workers.listen(settings)
        port = sock.getsockname()[1]
        pool = workers.WorkerPool(settings, sock, processes)
        pool.start()
        if not pool.wait_ready():
            log.warning("a receiving process did not start in time; serving without it")
        dicom = workers.serve_shared(settings, archive, sock, pool.slots, 0)
        threading.Thread(target=dicom.serve_forever, kwargs={"poll_interval": 0.5},
                         name="pacsnode-dicom-0", daemon=True).start()
    else:
        dicom = server.start(settings, archive)
        port = dicom.server_address[1]

    # Imported here, not at the top: the command line's other commands need neither.
    from pacsnode.dimse.job_runner import JobRunner
    from pacsnode.web import server as web_server

    jobs = JobRunner(archive, settings)
    try:
        web = web_server.start(settings, archive, jobs)
    except OSError as exc:
        dicom.shutdown()
        if pool is not None:
            pool.shutdown()
        raise click.ClickException(f"cannot listen for HTTP on {settings.http_host}:"
                                   f"{settings.http_port}: {exc}") from exc

    hl7 = None
    if settings.hl7_port:
        from pacsnode.hl7 import receiver as hl7_receiver

        try:
            hl7 = hl7_receiver.start(settings, archive.engine)
        except OSError as exc:
            web.stop()
            dicom.shutdown()
            if pool is not None:
                pool.shutdown()
            raise click.ClickException(f"cannot listen for HL7 on {settings.dicom_host}:"
                                       f"{settings.hl7_port}: {exc}") from exc
    jobs.start()
    study_complete.start()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    click.echo(f"pacsnode ready: DICOM {settings.aet} on port {port}, HTTP on port "
               f"{web.port}, data in {settings.data_dir}", err=True)
    try:
        if pool is not None:
            pool.watch(stop)
        else:
            stop.wait()
    finally:
        if hl7 is not None:
            hl7.stop()
        web.stop()
        study_complete.stop()
        jobs.stop(10.0)
        if dicom is not None:
            dicom.shutdown()
        if pool is not None:
            pool.shutdown()
        flusher.stop()
        archive.close()
        log.info("stopped")
