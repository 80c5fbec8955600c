"""``pacsnode peers add|list|remove`` on both index backends: peers live in the index, so a
peer one process adds is seen by every other process sharing the database (without a
restart); TOML ``[peers.NAME]`` entries are listed too and win on a name clash; bad input is
a usage error; the 0002 migration upgrades an existing 0001 database and downgrades again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from pacsnode import Archive
from pacsnode.config import Settings, resolve
from pacsnode.core import peers
from pacsnode.index import migrate
from pacsnode.index.engine import create_engine


def run(data_dir: Path, db: str | None, subcommand: str, *args: str,
        config: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pacsnode", "peers", subcommand, "--data-dir", str(data_dir)]
    if db:
        cmd += ["--db", db]
    if config is not None:
        cmd += ["--config", str(config)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)


def listed(data_dir: Path, db: str | None, config: Path | None = None) -> list[dict[str, Any]]:
    result = run(data_dir, db, "list", "--json", config=config)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_add_list_remove_across_processes(tmp_path: Path, db_url: str | None) -> None:
    data = tmp_path / "data"
    assert listed(data, db_url) == []
    # A long-lived process holding the archive open (as `pacsnode serve` does).
    archive = Archive.open(data, db=db_url)
    try:
        assert peers.by_name(archive.settings, "CT1", archive.engine) is None

        added = run(data, db_url, "add", "CT1", "CT_SCANNER", "10.0.0.5", "104")
        assert added.returncode == 0, added.stderr
        assert "added peer CT1" in added.stdout
        assert run(data, db_url, "add", "WS", "VIEWER", "viewer.local", "11113"
                   ).returncode == 0

        rows = listed(data, db_url)
        assert [(r["name"], r["aet"], r["host"], r["port"], r["source"]) for r in rows] == [
            ("CT1", "CT_SCANNER", "10.0.0.5", 104, "index"),
            ("WS", "VIEWER", "viewer.local", 11113, "index")]
        assert all(r["created_at"] and not r["shadowed"] for r in rows)

        text = run(data, db_url, "list")
        assert text.returncode == 0
        assert "CT1" in text.stdout and "CT_SCANNER" in text.stdout
        assert "10.0.0.5:104" in text.stdout

        # Seen at once by the process that was already running.
        settings = archive.settings
        assert peers.by_name(settings, "CT1", archive.engine) == peers.Peer(
            "CT1", "CT_SCANNER", "10.0.0.5", 104)
        assert peers.by_aet(settings, "CT_SCANNER ", engine=archive.engine) is not None
        assert peers.by_aet_in(settings, archive.engine, "VIEWER").name == "WS"
        assert peers.by_aet(settings, "CT_SCANNER") is None  # TOML only: not there

        again = run(data, db_url, "add", "CT1", "OTHER", "10.0.0.6", "104")
        assert again.returncode == 1 and "already exists" in again.stderr
        assert listed(data, db_url)[0]["aet"] == "CT_SCANNER"

        removed = run(data, db_url, "remove", "CT1")
        assert removed.returncode == 0 and "removed peer CT1" in removed.stdout
        assert [r["name"] for r in listed(data, db_url)] == ["WS"]
        assert peers.by_name(settings, "CT1", archive.engine) is None
        gone = run(data, db_url, "remove", "CT1")
        assert gone.returncode == 1 and "no peer CT1" in gone.stderr
    finally:
        archive.close()


def test_bad_input_is_a_usage_error(tmp_path: Path, db_url: str | None) -> None:
    data = tmp_path / "data"
    for args in (("P", "AE", "host", "0"), ("P", "AE", "host", "65536"),
                 ("P", "A" * 17, "host", "104"), ("P", "A\\B", "host", "104"),
                 ("P", "AE", "host", "port"), ("P", "  ", "host", "104")):
        result = run(data, db_url, "add", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
    assert listed(data, db_url) == []


def test_config_peer_wins_on_a_name_clash(tmp_path: Path, db_url: str | None) -> None:
    data = tmp_path / "data"
    config = tmp_path / "pacsnode.toml"
    config.write_text('[peers.PACS]\naet = "TOML_AE"\nhost = "127.0.0.1"\nport = 4242\n'
                      '[peers.ONLYTOML]\naet = "T2"\nhost = "127.0.0.1"\nport = 4243\n')
    added = run(data, db_url, "add", "PACS", "INDEX_AE", "10.0.0.9", "104", config=config)
    assert added.returncode == 0
    assert "configuration file declares peer PACS" in added.stderr

    rows = listed(data, db_url, config)
    assert [(r["name"], r["aet"], r["source"], r["shadowed"]) for r in rows] == [
        ("ONLYTOML", "T2", "config", False),
        ("PACS", "TOML_AE", "config", False),
        ("PACS", "INDEX_AE", "index", True)]
    assert "hidden by the config entry" in run(data, db_url, "list", config=config).stdout

    settings = resolve({"data_dir": str(data), "db": db_url}, env={}, config_file=config)
    with Archive(settings) as archive:
        assert peers.by_name(settings, "PACS", archive.engine).aet == "TOML_AE"
        assert peers.by_aet(settings, "INDEX_AE", archive.engine) is None  # shadowed
        assert [p.name for p in peers.all_peers(settings, archive.engine)] == [
            "ONLYTOML", "PACS"]

    not_ours = run(data, db_url, "remove", "ONLYTOML", config=config)
    assert not_ours.returncode == 1 and "configuration file" in not_ours.stderr
    removed = run(data, db_url, "remove", "PACS", config=config)
    assert removed.returncode == 0 and "still declared" in removed.stderr
    assert [r["source"] for r in listed(data, db_url, config)] == ["config", "config"]


def _alembic(engine: sa.Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def test_migration_0002_upgrades_and_downgrades(tmp_path: Path, db_url: str | None) -> None:
    settings = Settings(data_dir=tmp_path / "data", db=db_url)
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.db_url)
    try:
        command.upgrade(_alembic(engine), "0001")  # a database of the previous release
        assert "peer" not in sa.inspect(engine).get_table_names()
        assert run(settings.data_dir, db_url, "add", "X", "XAE", "h", "1").returncode == 0
        assert migrate.current_revision(engine) == migrate.head_revision()
        inspector = sa.inspect(engine)
        assert "peer" in inspector.get_table_names()
        assert {ix["name"] for ix in inspector.get_indexes("peer")} >= {"ix_peer_aet"}
        command.downgrade(_alembic(engine), "0001")
        assert "peer" not in sa.inspect(engine).get_table_names()
        assert {"patient", "study", "series", "instance"} <= set(
            sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
