"""Bringing an index database to the current schema with Alembic.

Alembic is imported only here, and only when a database is not at :data:`HEAD`: a process
that opens a current index never loads it (about 12 MiB, which ``serve`` would otherwise
keep for as long as it runs).
"""

from __future__ import annotations

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


def upgrade(engine: Engine) -> None:
    """Apply every migration the database lacks (a no-op when it is current)."""
    if recorded_revision(engine) == HEAD:
        return
    from alembic import command

    command.upgrade(_config(engine), "head")  # Alembic applies only what is missing
