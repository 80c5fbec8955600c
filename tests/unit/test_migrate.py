"""Schema migration on open (pacsnode.index.migrate): a current index is recognised without
Alembic, anything else is brought to the head with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic import command

from pacsnode.index import migrate
from pacsnode.index.engine import create_engine


def test_head_is_alembics_head() -> None:
    assert migrate.head_revision() == migrate.HEAD


def test_an_older_index_is_upgraded_and_a_current_one_recognised(
        tmp_path: Path, db_url: str | None) -> None:
    engine = create_engine(db_url or f"sqlite:///{tmp_path / 'index.sqlite'}")
    try:
        assert migrate.recorded_revision(engine) is None  # empty
        command.upgrade(migrate._config(engine), "0006")
        assert migrate.recorded_revision(engine) == "0006"
        migrate.upgrade(engine)
        assert migrate.recorded_revision(engine) == migrate.HEAD
        assert migrate.current_revision(engine) == migrate.HEAD  # Alembic agrees
        migrate.upgrade(engine)  # current: nothing to do
        assert migrate.current_revision(engine) == migrate.HEAD
    finally:
        engine.dispose()


def _opens_with_alembic(data_dir: Path) -> bool:
    code = ("import sys\n"
            "from pacsnode.core.archive import Archive\n"
            f"Archive.open({str(data_dir)!r}).close()\n"
            "print('alembic' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip() == "True"


def test_opening_a_current_index_does_not_load_alembic(tmp_path: Path) -> None:
    assert _opens_with_alembic(tmp_path / "data")  # created: migrated with Alembic
    assert not _opens_with_alembic(tmp_path / "data")


def test_an_isolated_upgrade_migrates_in_a_child_process(tmp_path: Path,
                                                         db_url: str | None) -> None:
    """What ``serve`` does: a new index is created at HEAD, Alembic never loaded here."""
    url = db_url or f"sqlite:///{tmp_path / 'index.sqlite'}"
    code = ("import sys\n"
            "from pacsnode.index import migrate\n"
            "from pacsnode.index.engine import create_engine\n"
            "engine = create_engine(sys.stdin.read())\n"
            "migrate.upgrade(engine, isolated=True)\n"
            "print(migrate.recorded_revision(engine), 'alembic' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], input=url, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [migrate.HEAD, "False"]
    engine = create_engine(url)
    try:
        assert migrate.current_revision(engine) == migrate.HEAD  # Alembic agrees
    finally:
        engine.dispose()
