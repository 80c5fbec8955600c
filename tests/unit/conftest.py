"""Fixtures of the core's unit tests: an archive in the test's temporary directory, on the
test's index backend.

``db_url`` here overrides the shared fixture of ``tests/conftest.py`` with the same meaning
(parametrised: ``None`` = SQLite in the data directory, or an empty PostgreSQL index of its
own; PostgreSQL cases skip where the server is unreachable, fail in CI) but a cheaper
PostgreSQL index: a fresh *schema* (selected with ``search_path``) in one database per
session, since creating a database costs about a second and the unit tests need hundreds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pacsnode.core.archive import Archive
from tests.conftest import pg_database, require_postgres

pytest.register_assert_rewrite("tests.unit.dicomdata")


@pytest.fixture(scope="session")
def pg_unit_database() -> Iterator[str]:
    """A database for this session's unit tests (skips them where PostgreSQL is
    unreachable, fails them in CI)."""
    require_postgres()
    with pg_database("pacsnode_unit") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The index of one test: None (SQLite in the data directory) or a PostgreSQL URL whose
    ``search_path`` is a new, empty schema, dropped afterwards."""
    if request.param == "sqlite":
        yield None
        return
    database = request.getfixturevalue("pg_unit_database")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{database}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def open_archive(data_dir: Path, db_url: str | None) -> Iterator[Callable[..., Archive]]:
    """``open_archive(**settings)`` opens (again) the test's archive with these settings."""
    opened: list[Archive] = []

    def open_(**settings: Any) -> Archive:
        archive = Archive.open(data_dir, db=db_url, **settings)
        opened.append(archive)
        return archive

    yield open_
    for archive in opened:
        archive.close()


@pytest.fixture
def archive(open_archive: Callable[..., Archive]) -> Archive:
    """The test's archive with default settings (duplicate policy ``replace``)."""
    return open_archive()


@pytest.fixture(scope="session")
def corpus_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A small synthetic multi-patient corpus: 3 patients x 2 studies x 2 series x 2 images
    (8x8), studies alternately CT and MR. Written once per session; never modify it."""
    from pacsnode.synthetic import generate_corpus

    return generate_corpus(tmp_path_factory.mktemp("corpus"), patients=3,
                           studies_per_patient=2, series_per_study=2, instances_per_series=2,
                           rows=8, columns=8, seed=7)
