"""The sweeper relays what the publisher could not send, re-sends what delivery lost, settles what dead
invocations left behind, and prunes history, without ever multiplying a message."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

import worker.runtime
from db import DB, JobStatus, Queue, get_job, utcnow
from tests.support.esm import drain
from tests.support.factories import insert_job
from tests.support.sqs_faults import FlakySqs
from worker import sweeper
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


def _sent_ids(queue: Queue) -> list[str]:
    return sorted(json.loads(m["Body"])["jobId"] for m in drain(queue))


def test_unsent_pending_jobs_are_sent_once(pg_db: DB, queue: Queue, runtime: Runtime) -> None:
    now = utcnow()
    stuck = insert_job(pg_db, created_at=now - timedelta(minutes=30))
    fresh = insert_job(pg_db, created_at=now)  # its publisher is sending it right now
    report = sweeper.sweep(runtime, now=now)
    assert report.resent == {"pending": [stuck.id]}
    assert _sent_ids(queue) == [str(stuck.id)]
    assert sweeper.sweep(runtime, now=now).resent == {}  # a second run sends nothing twice
    # An hour on, the fresh one's send was evidently lost; the first is sent, so never again.
    assert sweeper.sweep(runtime, now=now + timedelta(hours=1)).resent == {"pending": [fresh.id]}


def test_a_backlog_of_sent_pending_jobs_is_never_multiplied(pg_db: DB, queue: Queue, runtime: Runtime) -> None:
    """The worker is paused: three jobs sit in the queue for hours. Sweeps every 5 minutes send nothing."""
    start = utcnow()
    for _ in range(3):
        insert_job(pg_db, created_at=start, sent_at=start)
    for minute in range(5, 6 * 60, 5):
        assert sweeper.sweep(runtime, now=start + timedelta(minutes=minute)).resent == {}
    assert drain(queue) == []
    late = sweeper.sweep(runtime, now=start + runtime.config.sweep_expired_after + timedelta(minutes=1))
    assert len(late.resent["pending"]) == 3  # past retention their messages are gone: each sent once more


def test_stale_processing_jobs_are_resent_once_or_marked_abandoned(pg_db: DB, queue: Queue, runtime: Runtime) -> None:
    long_ago = utcnow() - timedelta(hours=1)
    retry = insert_job(pg_db, status=JobStatus.PROCESSING, attempts=1, max_attempts=5, started_at=long_ago)
    dead = insert_job(pg_db, status=JobStatus.PROCESSING, attempts=5, max_attempts=5, started_at=long_ago)
    live = insert_job(pg_db, status=JobStatus.PROCESSING, attempts=1, started_at=utcnow())
    report = sweeper.sweep(runtime)
    assert report.resent == {"processing": [retry.id]}
    assert report.abandoned == [dead.id]
    assert _sent_ids(queue) == [str(retry.id)]
    dead_row = get_job(pg_db, dead.id)
    assert dead_row is not None and dead_row.status is JobStatus.FAILED
    assert dead_row.error == "abandoned: worker did not finish"
    assert get_job(pg_db, live.id) == live
    again = sweeper.sweep(runtime)
    assert again.abandoned == [] and again.resent == {}
    assert drain(queue) == []


def test_sqs_still_down_leaves_jobs_due_for_the_next_run(pg_db: DB, queue: Queue, runtime: Runtime) -> None:
    stuck = insert_job(pg_db, created_at=utcnow() - timedelta(minutes=30))
    broken = Runtime(runtime.config, db=pg_db, sqs=FlakySqs(queue.client, fail_sends=True))
    report = sweeper.sweep(broken)
    assert list(report.send_failures) == [stuck.id]
    assert report.resent == {}
    row = get_job(pg_db, stuck.id)
    assert row is not None and row.sent_at is None and row.send_count == 0
    assert sweeper.sweep(runtime).resent == {"pending": [stuck.id]}


def test_the_sweeper_prunes_history_past_its_retention(pg_db: DB, runtime: Runtime) -> None:
    old = utcnow() - timedelta(days=100)
    done = insert_job(pg_db, status=JobStatus.COMPLETED, attempts=1, updated_at=old)
    dead = insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5, updated_at=old)
    recent = insert_job(pg_db, status=JobStatus.COMPLETED, attempts=1)
    report = sweeper.sweep(runtime)
    assert report.pruned == {"completed": 1, "failed": 1, "cancelled": 0}
    assert get_job(pg_db, done.id) is None and get_job(pg_db, dead.id) is None
    assert get_job(pg_db, recent.id) == recent


def test_pruning_goes_on_batch_after_batch_until_the_history_is_gone(pg_db: DB, runtime: Runtime) -> None:
    """Not a fixed number of statements: at 1,000 completed jobs/s a run every 5 minutes has 300,000 rows
    to delete, and ten statements of 1,000 kept up with 33/s."""
    old = utcnow() - timedelta(days=100)
    _old_completed(pg_db, 25, old)
    runtime.config = replace(runtime.config, prune_batch_limit=2)
    report = sweeper.sweep(runtime)
    assert report.pruned["completed"] == 25  # thirteen statements of at most 2 rows


def test_pruning_stops_at_its_deadline_after_one_statement_per_status(pg_db: DB, runtime: Runtime) -> None:
    _old_completed(pg_db, 25, utcnow() - timedelta(days=100))
    runtime.config = replace(runtime.config, prune_batch_limit=2)
    report = sweeper.sweep(runtime, prune_until=time.monotonic() - 1)
    assert report.pruned["completed"] == 2


def test_the_prune_deadline_leaves_the_invocation_its_reserve() -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 30_000

    left = sweeper.prune_deadline(Context()) - time.monotonic()
    assert 9 <= left <= 10  # 30 s left, less the 20 s reserve
    assert sweeper.PRUNE_SECONDS - 1 <= sweeper.prune_deadline(None) - time.monotonic() <= sweeper.PRUNE_SECONDS


def _old_completed(db: DB, n: int, when: datetime) -> None:
    for _ in range(n):
        insert_job(db, status=JobStatus.COMPLETED, attempts=1, updated_at=when)


def test_sweeper_entry_point_reports_counts(
    monkeypatch: pytest.MonkeyPatch, pg_url: str, pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    for name, value in {"DATABASE_URL": pg_url, "QUEUE_URL": queue.url, "DLQ_URL": dlq.url}.items():
        monkeypatch.setenv(name, value)
    worker.runtime.reset()
    insert_job(pg_db, created_at=utcnow() - timedelta(hours=1))
    result: dict[str, Any] = sweeper.handler({}, None)
    assert result == {
        "resent_pending": 1,
        "abandoned": 0,
        "released": 0,
        "send_failures": 0,
        "pruned_completed": 0,
        "pruned_failed": 0,
        "pruned_cancelled": 0,
        "fires_replayed": 0,  # no schedules: no failure queue to read
        "fires_still_failing": 0,
        "settled": 0,
        "waits_timed_out": 0,
        "turns_released": 0,
    }
    assert worker.runtime.current().config.queue_url == queue.url, "the sweeper built the container's runtime"
    worker.runtime.reset()
