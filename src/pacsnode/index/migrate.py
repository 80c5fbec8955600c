"""Bringing an index database to the current schema with Alembic.

Alembic is imported only here, and only when a database is not at :data:`HEAD`: a process
that opens a current index never loads it (about 8 MiB, which ``serve`` would otherwise
keep for as long as it runs). ``serve`` migrates a new or older index in a child process
(:func:`upgrade` with ``isolated``), so that it never loads Alembic at all.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")

# The newest revision under migrations/versions; a new migration changes it (a unit test
# compares it with Alembic's head).
HEAD = "0009"


def _config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, ``None`` for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision this version of pacsnode knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def recorded_revision(engine: Engine) -> str | None:
    """The revision in Alembic's version table, read without Alembic; ``None`` when there
    is none (an empty database) or more than one (branches, which pacsnode never has)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    return str(rows[0][0]) if len(rows) == 1 else None


def upgrade(engine: Engine, *, isolated: bool = False) -> None:
    """Apply every migration the database lacks (a no-op when it is current); with
    ``isolated``, in a child process (``python -m pacsnode.index.migrate``, the URL on its
    standard input), unless the database lives in this process's memory."""
    if recorded_revision(engine) == HEAD:
        return
    if isolated and engine.url.database not in (None, "", ":memory:"):
        child = subprocess.run(
            [sys.executable, "-m", __name__],
            input=engine.url.render_as_string(hide_password=False), text=True,
            capture_output=True, check=False)
        if child.returncode != 0:
            raise RuntimeError(f"migrating the index failed:\n{child.stderr.strip()}")
        return
    from alembic import command

    command.upgrade(_config(engine), "head")  # Alembic applies only what is missing


if __name__ == "__main__":
    from pacsnode.index.engine import create_engine

    _engine = create_engine(sys.stdin.read().strip())
    try:
        upgrade(_engine)
    finally:
        _engine.dispose()
