"""Group commit (:mod:`pacsnode.core.group_commit`): data sets submitted by several threads
while a commit is under way are stored together in the next one, each thread gets its own
result, one thread alone is stored at once, and a failure answers every waiter. Both index
backends, real files."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from pacsnode.core.archive import Archive
from pacsnode.core.group_commit import GroupCommitter
from pacsnode.core.ingest import Expectation, Prepared
from pacsnode.core.results import Outcome, RejectReason
from pacsnode.index.schema import instance
from tests.unit.dicomdata import assert_index_matches, make_dataset, part10
from tests.unit.test_ingest_batch import spool


def committer(archive: Archive) -> GroupCommitter:
    return GroupCommitter(archive.ingestor)


def test_one_thread_alone_is_stored_at_once(archive: Archive) -> None:
    group = committer(archive)
    datasets = [make_dataset() for _ in range(3)]
    for ds in datasets:
        result = group.ingest_spooled(spool(archive, part10(ds)), sending_aet="MOD")
        assert result.outcome is Outcome.STORED
    assert (group.batches, group.largest_batch) == (3, 1)
    assert_index_matches(archive, datasets)


def test_data_sets_arriving_during_a_commit_share_the_next(
        archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    group = committer(archive)
    ingestor = archive.ingestor
    real = ingestor.commit_prepared
    first_started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_first(batch: list[Prepared]) -> Any:
        calls.append(len(batch))
        if len(calls) == 1:
            first_started.set()
            assert release.wait(10)
        return real(batch)

    monkeypatch.setattr(ingestor, "commit_prepared", slow_first)
    first = make_dataset()
    others = [make_dataset() for _ in range(5)]
    wrong = make_dataset()
    with ThreadPoolExecutor(8) as pool:
        head = pool.submit(group.ingest_spooled, spool(archive, part10(first)))
        assert first_started.wait(10)
        futures = [pool.submit(group.ingest_spooled, spool(archive, part10(ds)),
                               sending_aet=f"M{n}") for n, ds in enumerate(others)]
        refused = pool.submit(group.ingest_spooled, spool(archive, part10(wrong)),
                              expect=Expectation(sop_instance_uid="1.2.3"))
        # a refusal is answered at once: it has nothing to commit
        assert refused.result(10).reason is RejectReason.UID_MISMATCH
        while len(group._waiting) < 5:  # every other one is queued behind the first commit
            threading.Event().wait(0.005)
        release.set()
        assert head.result().outcome is Outcome.STORED
        results = [f.result() for f in futures]
    assert calls == [1, 5]
    assert [r.sop_instance_uid for r in results] == [ds.SOPInstanceUID for ds in others]
    assert {r.outcome for r in results} == {Outcome.STORED}
    assert_index_matches(archive, [first, *others])
    with archive.engine.connect() as conn:  # each data set kept its own calling AE title
        rows = dict(conn.execute(sa.select(instance.c.sop_instance_uid, instance.c.source_aet)
                                 .where(instance.c.sop_instance_uid.in_(
                                     [ds.SOPInstanceUID for ds in others]))).all())
    assert [rows[ds.SOPInstanceUID] for ds in others] == [f"M{n}" for n in range(5)]


def test_a_failure_answers_every_waiter(archive: Archive,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    group = committer(archive)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(archive.ingestor, "commit_prepared", broken)
    with pytest.raises(RuntimeError):
        group.ingest_spooled(spool(archive, part10(make_dataset())))
    monkeypatch.undo()
    result = group.ingest_spooled(spool(archive, part10(make_dataset())))
    assert result.outcome is Outcome.STORED  # not left "committing" after the failure
