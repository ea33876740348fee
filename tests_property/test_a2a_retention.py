"""Retention of finished A2A tasks: the pure rule (memesh.a2a.retention) against the
definition — terminal and older than the kept time — and the stores' bounded deletion on
each backend, driven with random tasks: repeated batches delete exactly the due tasks,
oldest first, never more than a batch at a time, and never an unfinished one."""
from __future__ import annotations

import pathlib
import shutil
import tempfile
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from memesh.a2a import retention, states
from memesh.store.base import TaskRecord
from memesh.store.storage import open_storage

times = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
keeps = st.one_of(st.just(0.0), st.floats(min_value=0.001, max_value=1e6, allow_nan=False))


@given(state=st.sampled_from(states.STATES), updated=times, now=times, keep=keeps)
def test_a_task_is_due_only_when_finished_and_older_than_the_kept_time(state, updated, now, keep):
    due = retention.is_due(state, updated, now, keep)
    assert due == (keep > 0 and state in {"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED",
                                          "TASK_STATE_REJECTED"} and now - updated > keep)


@given(state=st.sampled_from(states.STATES), updated=times, now=times, later=times, keep=keeps)
def test_a_due_task_stays_due_as_time_goes_on(state, updated, now, later, keep):
    if retention.is_due(state, updated, now, keep):
        assert retention.is_due(state, updated, now + later, keep)


@given(ttl=st.floats(min_value=0.001, max_value=1e7), keep=keeps)
def test_sweeps_come_often_enough_for_both_durations_and_never_busily(ttl, keep):
    interval = retention.sweep_interval(ttl, keep)
    assert retention.MIN_INTERVAL <= interval <= retention.MAX_INTERVAL
    assert interval <= max(retention.MIN_INTERVAL, ttl / 2)
    if keep > 0:
        assert interval <= max(retention.MIN_INTERVAL, keep / 2)


@given(deleted=st.integers(0, retention.BATCH), done=st.integers(1, 100))
def test_a_sweep_stops_after_a_short_batch_or_its_last_allowed_batch(deleted, done):
    assert retention.another_batch(deleted, done) == (deleted == retention.BATCH and done < retention.BATCHES_PER_SWEEP)


task_rows = st.lists(st.tuples(st.sampled_from(states.STATES), st.integers(0, 50)), max_size=30)


def _check_deletion(url: str, rows: list[tuple[str, int]], now: float, keep: float, limit: int) -> None:
    directory = pathlib.Path(tempfile.mkdtemp(prefix="mm", dir="/tmp"))
    storage = open_storage(url, directory / "memesh.db", hub=f"tester@host:/run/{uuid.uuid4().hex}")
    try:
        store = storage.a2a
        for i, (state, updated) in enumerate(rows):
            store.save_task(TaskRecord(id=f"t{i}", context_id="c", agent="a", sender="b", state=state, summary="",
                                       task=b"x", now=float(updated)))
        due = {f"t{i}" for i, (state, updated) in enumerate(rows) if retention.is_due(state, updated, now, keep)}
        before = retention.cutoff(now, keep)
        gone: set[str] = set()
        while before is not None:
            deleted = store.delete_finished(before, limit)
            assert deleted <= limit
            left = {r[1] for r in store.list_tasks(limit=1000)[0]}
            batch = {f"t{i}" for i in range(len(rows))} - left - gone
            assert len(batch) == deleted and batch <= due
            newest_deleted = max((rows[int(t[1:])][1] for t in batch), default=None)
            remaining_due = [rows[int(t[1:])][1] for t in due - gone - batch]
            assert newest_deleted is None or all(u >= newest_deleted for u in remaining_due)   # oldest first
            gone |= batch
            if deleted < limit:
                break
        assert gone == due
        assert {r[1] for r in store.list_tasks(limit=1000)[0]} == {f"t{i}" for i in range(len(rows))} - due
    finally:
        storage.close()
        shutil.rmtree(directory, ignore_errors=True)


def test_the_stores_delete_exactly_the_due_tasks_oldest_first_in_bounded_batches(backend):
    url = backend if backend.startswith("postgresql") else "sqlite:"

    @settings(max_examples=40, deadline=None)
    @given(rows=task_rows, now=st.integers(0, 60), keep=st.sampled_from([0.0, 0.5, 5.0, 20.0]),
           limit=st.integers(1, 7))
    def run(rows, now, keep, limit):
        _check_deletion(url, rows, float(now), keep, limit)

    run()
