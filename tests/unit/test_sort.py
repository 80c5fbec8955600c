"""Sorted searches and counts (pacsnode.index.sorting, pacsnode.index.search), on both
backends: the ``sort`` parser, the order SQL returns — ascending, descending, ties broken by
the primary key so that pages neither repeat nor skip — together with a key matched on the
stored JSON, and ``count``; the REST lists' ``sort`` and ``count=true``. Expected orders
are computed here from the test table, not by pacsnode's code. Also migration 0007 (the
sort index)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydicom.datadict import tag_for_keyword

from pacsnode.core.archive import Archive
from pacsnode.index import matching, migrate, schema, sorting
from pacsnode.index.levels import Level
from pacsnode.index.search import compile_search
from pacsnode.web import api_resources, problems
from tests.unit.dicomdata import make_dataset

# accession, patient id, patient name, study date, study time, requested procedure
STUDIES = [
    ("A01", "P1", "doe^anna", "20200105", "0800", "HEAD"),
    ("A02", "P2", "DOE^BEN", "20200105", "0800", "CHEST"),
    ("A03", "P3", "Smith^Carl", "20210301", "1200", "HEAD"),
    ("A04", "P4", "adams^dora", "20190101", "0930", "HEAD"),
    ("A05", "P1", "doe^anna", "20200105", "0700", "KNEE"),
    ("A06", "P5", "Baker^Eve", "20220202", "1000", "HEAD"),
    ("A07", "P6", "zimmer^finn", "20200105", "0800", "HEAD"),
    ("A08", "P7", "Carter^Gus", "", "", "CHEST"),
    ("A09", "P8", "DOE^ABE", "20210301", "1200", "HEAD"),
]
ACCESSION = f"{tag_for_keyword('AccessionNumber'):08X}"
PROCEDURE = tag_for_keyword("RequestedProcedureDescription")


def _order(rows: list[tuple[str, ...]], *keys: tuple[int, bool]) -> list[str]:
    """Accessions of ``rows`` sorted by (column index, descending) keys, ties by storage
    order in the direction of the last key (what pacsnode promises)."""
    indexed = list(enumerate(rows))
    last_desc = keys[-1][1] if keys else False
    indexed.sort(key=lambda r: r[0], reverse=last_desc)
    for column, desc in reversed(keys):
        indexed.sort(key=lambda r, c=column: r[1][c], reverse=desc)
    return [r[0] for _, r in indexed]


@pytest.fixture
def loaded(archive: Archive) -> Archive:
    for n, (acc, pid, name, date, time, procedure) in enumerate(STUDIES):
        ds = make_dataset(patient_id=pid, patient_name=name,
                          study_uid=f"1.2.826.0.1.3680043.10.511.3.{n + 1}")
        ds.AccessionNumber = acc
        ds.StudyDate, ds.StudyTime = date, time
        ds.RequestedProcedureDescription = procedure
        if n == 2:
            del ds.SeriesNumber
        else:
            ds.SeriesNumber = 10 - n
        result = archive.ingest(ds)
        assert result.ok, result.detail
    return archive


def accessions(archive: Archive, sort: str, level: Level = Level.STUDY,
               keys: dict[int, matching.Condition] | None = None, **paging: int) -> list[str]:
    order = sorting.parse(level, sort)
    return [m.attrs[ACCESSION]["Value"][0]
            for m in archive.search(level, keys or {}, order=order, **paging)]


# --------------------------------------------------------------------------- the parser
def test_parse_keywords_tags_and_directions():
    keys = sorting.parse(Level.STUDY, "-StudyDate, PatientName,00080050,+StudyTime,created")
    assert [(k.name, k.descending) for k in keys] == [
        ("StudyDate", True), ("PatientName", False), ("AccessionNumber", False),
        ("StudyTime", False), ("created", False)]
    assert keys[1].column is schema.patient.c.patient_name_norm  # case-insensitive
    assert sorting.describe(keys) == "-StudyDate,PatientName,AccessionNumber,StudyTime,created"
    assert sorting.parse(Level.STUDY, "") == ()
    assert sorting.parse(Level.STUDY, " , ") == ()
    assert [k.name for k in sorting.parse(Level.IMAGE, "-InstanceNumber,StudyDate,created")] \
        == ["InstanceNumber", "StudyDate", "created"]


@pytest.mark.parametrize(("level", "spec", "message"), [
    (Level.STUDY, "Modality", "cannot sort study results by 'Modality'"),  # series level
    (Level.STUDY, "NoSuchKeyword", "'NoSuchKeyword'"),
    (Level.STUDY, "InstitutionName", "'InstitutionName'"),  # not a column
    (Level.STUDY, "SOPClassesInStudy", "'SOPClassesInStudy'"),
    (Level.PATIENT, "created", "'created'"),  # a study's
    (Level.PATIENT, "StudyDate", "cannot sort patient results"),
    (Level.STUDY, "StudyDate,-StudyDate", "StudyDate is given twice"),
    (Level.STUDY, "0008002", "'0008002'"),
])
def test_parse_rejects_what_is_not_a_column(level, spec, message):
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        sorting.parse(level, spec)
    if "twice" not in message:  # the answer names what can be sorted on
        assert "sortable: " in str(info.value) and "PatientName" in str(info.value)


def test_sortable_lists_the_levels_columns():
    study_keys = sorting.sortable(Level.STUDY)
    for name in ("StudyDate", "StudyTime", "PatientName", "PatientID", "PatientBirthDate",
                 "AccessionNumber", "ModalitiesInStudy", "StudyDescription",
                 "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "created"):
        assert name in study_keys
    assert "Modality" not in study_keys and "Modality" in sorting.sortable(Level.SERIES)
    assert "StudyDate" not in sorting.sortable(Level.PATIENT)


def test_primary_key_breaks_ties_in_the_last_direction():
    def sql(spec: str) -> str:
        plan = compile_search(Level.STUDY, {}, order=sorting.parse(Level.STUDY, spec))
        return str(plan.statement).split("ORDER BY")[1]

    assert sql("").strip() == "study.pk ASC"
    assert sql("-StudyDate").strip() == "study.study_date DESC, study.pk DESC"
    assert sql("-StudyDate,PatientName").strip() == (
        "study.study_date DESC, patient.patient_name_norm ASC, study.pk ASC")


# --------------------------------------------------------------------------- the order
def test_sorted_ascending_descending_and_ties(loaded):
    rows = [(s[0], s[2].upper(), s[3], s[4]) for s in STUDIES]
    assert accessions(loaded, "") == [s[0] for s in STUDIES]  # default: storage order
    assert accessions(loaded, "StudyDate") == _order(rows, (2, False))
    assert accessions(loaded, "-StudyDate") == _order(rows, (2, True))
    assert accessions(loaded, "-StudyDate,-StudyTime") == _order(rows, (2, True), (3, True))
    # names sort case-insensitively, ties (the same patient) by storage order
    assert accessions(loaded, "PatientName") == _order(rows, (1, False))
    assert accessions(loaded, "PatientName")[:5] == ["A04", "A06", "A08", "A09", "A01"]
    assert accessions(loaded, "-StudyDate,PatientName") == _order(rows, (2, True), (1, False))
    assert accessions(loaded, "-AccessionNumber") == sorted((s[0] for s in STUDIES),
                                                            reverse=True)
    assert accessions(loaded, "created") == [s[0] for s in STUDIES]
    assert accessions(loaded, "-created") == [s[0] for s in reversed(STUDIES)]


def test_names_sort_case_insensitively(loaded):
    names = [m.attrs["00100010"]["Value"][0]["Alphabetic"]
             for m in loaded.search(Level.STUDY, {}, order=sorting.parse(Level.STUDY,
                                                                         "PatientName"))]
    assert [n.upper() for n in names] == sorted(n.upper() for n in names)
    assert names[0] == "adams^dora" and names[-1] == "zimmer^finn"


@pytest.mark.parametrize("spec", ["-StudyDate", "StudyDate,StudyTime", "PatientName",
                                  "-PatientID", "NumberOfStudyRelatedInstances"])
def test_pages_neither_repeat_nor_skip(loaded, spec):
    everything = accessions(loaded, spec)
    assert sorted(everything) == sorted(s[0] for s in STUDIES)
    for size in (1, 2, 4):
        pages = [accessions(loaded, spec, limit=size, offset=n)
                 for n in range(0, len(everything), size)]
        assert [a for page in pages for a in page] == everything


def test_sort_with_a_key_matched_on_the_stored_json(loaded):
    """RequestedProcedureDescription is no column: matched on the study's JSON after SQL,
    paging counts the rows it keeps, in the sorted order."""
    keys = {PROCEDURE: matching.parse("LO", "HEAD")}
    plan = compile_search(Level.STUDY, keys, order=sorting.parse(Level.STUDY, "-StudyDate"))
    assert plan.json_filters
    rows = [(s[0], s[3], s[5]) for s in STUDIES]
    head = [r for r in rows if r[2] == "HEAD"]
    expected = _order(head, (1, True))
    assert accessions(loaded, "-StudyDate", keys=keys) == expected
    pages = [accessions(loaded, "-StudyDate", keys=keys, limit=2, offset=n)
             for n in range(0, len(expected) + 2, 2)]
    assert [a for page in pages for a in page] == expected
    assert accessions(loaded, "-StudyDate", keys=keys, limit=2, offset=1) == expected[1:3]
    assert loaded.count(Level.STUDY, keys) == len(expected)


def test_empty_numbers_come_last_ascending(loaded):
    def numbers(spec: str) -> list[int | None]:
        return [(m.attrs.get("00200011") or {}).get("Value", [None])[0]
                for m in loaded.search(Level.SERIES, {},
                                       order=sorting.parse(Level.SERIES, spec))]

    assert numbers("SeriesNumber") == [2, 3, 4, 5, 6, 7, 9, 10, None]
    assert numbers("-SeriesNumber") == [None, 10, 9, 7, 6, 5, 4, 3, 2]


def test_count(loaded):
    assert loaded.count(Level.STUDY, {}) == len(STUDIES)
    assert loaded.count(Level.PATIENT, {}) == 8
    assert loaded.count(Level.IMAGE, {}) == len(STUDIES)
    doe = {tag_for_keyword("PatientName"): matching.parse("PN", "doe*")}
    assert loaded.count(Level.STUDY, doe) == 4
    both = {**doe, PROCEDURE: matching.parse("LO", "HEAD")}
    assert loaded.count(Level.STUDY, both) == 2  # A01, A09
    date = {tag_for_keyword("StudyDate"): matching.parse("DA", "20200101-20201231")}
    assert loaded.count(Level.STUDY, date) == 4
    nothing = {tag_for_keyword("PatientID"): matching.parse("LO", "NOBODY")}
    assert loaded.count(Level.STUDY, nothing) == 0
    assert loaded.count(Level.STUDY, {**nothing, PROCEDURE: matching.parse("LO", "HEAD")}) == 0


# --------------------------------------------------------------------------- REST API
@pytest.fixture
def client(loaded: Archive) -> Iterator[TestClient]:
    app = FastAPI()
    app.state.archive, app.state.settings = loaded, loaded.settings
    problems.install(app)
    app.include_router(api_resources.router)
    with TestClient(app) as client:
        yield client


def test_api_sorted_pages_with_total(client):
    rows = [(s[0], s[2].upper(), s[3], s[4]) for s in STUDIES]
    expected = _order(rows, (2, True), (3, True))
    seen = []
    for offset in range(0, len(STUDIES), 4):
        page = client.get("/api/studies", params={"sort": "-StudyDate,-StudyTime",
                                                  "limit": 4, "offset": offset,
                                                  "count": "true"}).json()
        assert page["total"] == len(STUDIES) and page["sort"] == "-StudyDate,-StudyTime"
        assert page["more"] is (offset + 4 < len(STUDIES))
        seen += [item["accession"] for item in page["items"]]
    assert seen == expected
    plain = client.get("/api/studies", params={"limit": 3}).json()  # default: no total
    assert "total" not in plain and "sort" not in plain
    assert [i["accession"] for i in plain["items"]] == ["A01", "A02", "A03"]


def test_api_sort_by_tag_with_filters_and_json_key(client):
    page = client.get("/api/studies?PatientName=doe*&sort=00100010,-00080020&count=true"
                      ).json()
    # A01 and A05 tie (one patient, one date): storage order, descending like the last key
    assert [i["accession"] for i in page["items"]] == ["A09", "A05", "A01", "A02"]
    assert page["total"] == 4
    # RequestedProcedureDescription is matched on the stored JSON: counted by streaming
    page = client.get("/api/studies?RequestedProcedureDescription=HEAD&sort=-created"
                      "&limit=2&offset=1&count=true").json()
    assert [i["accession"] for i in page["items"]] == ["A07", "A06"]
    assert page["total"] == 6 and page["more"] is True
    series = client.get("/api/series?sort=-SeriesNumber&limit=2").json()
    assert [i["number"] for i in series["items"]] == [None, 10]
    patients = client.get("/api/patients?sort=-PatientName&limit=1&count=true").json()
    assert patients["items"][0]["patient_name"] == "zimmer^finn" and patients["total"] == 8


@pytest.mark.parametrize(("query", "detail"), [
    ("sort=Modality", "cannot sort study results by 'Modality'"),
    ("sort=Nonsense", "cannot sort study results by 'Nonsense'"),
    ("sort=StudyDate,StudyDate", "StudyDate is given twice"),
    ("count=maybe", "count must be true or false"),
])
def test_api_bad_sort_or_count_is_a_problem(client, query, detail):
    answer = client.get(f"/api/studies?{query}")
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert detail in body["detail"]
    if query.startswith("sort=") and "twice" not in detail:
        assert "StudyDate" in body["sortable"] and "PatientName" in body["detail"]


# --------------------------------------------------------------------------- migration
def test_migration_0007_upgrades_and_downgrades(tmp_path: Path, db_url: str | None) -> None:
    engine = sa.create_engine(db_url or f"sqlite:///{tmp_path / 'index.sqlite'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS))
    cfg.attributes["engine"] = engine
    added = {("study", "ix_study_created_at")}

    def indexes() -> set[tuple[str, str]]:
        inspector = sa.inspect(engine)
        return {(t, str(i["name"])) for t in ("patient", "study", "series", "instance")
                for i in inspector.get_indexes(t)}

    try:
        command.upgrade(cfg, "0006")
        assert not added & indexes()
        command.upgrade(cfg, "0007")
        assert added <= indexes()
        with engine.connect() as conn:  # the migration creates what schema.py declares
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                     schema.metadata)
        # (0003's PostgreSQL-only pattern indexes are not declared in schema.py)
        index_diffs = [d for d in diffs if isinstance(d, tuple) and d[0].endswith("_index")
                       and not str(d[1].name).endswith("_pattern")]
        assert index_diffs == []
        command.downgrade(cfg, "0006")
        assert not added & indexes()
    finally:
        engine.dispose()
