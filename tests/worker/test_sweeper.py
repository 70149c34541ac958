"""The sweeper relays what the publisher could not send and settles what dead invocations left behind."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from db import DB, JobStatus, Queue, get_job
from db.repository import utcnow
from tests.db.factories import insert_job
from tests.sqs_faults import FlakySqs
from tests.worker.esm import drain
from worker import sweeper
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


def _sent_ids(queue: Queue) -> list[str]:
    return sorted(json.loads(m["Body"])["jobId"] for m in drain(queue))


def test_old_pending_jobs_are_sent_once_per_window(pg_db: DB, queue: Queue, runtime: Runtime) -> None:
    now = utcnow()
    stuck = insert_job(pg_db, created_at=now - timedelta(minutes=30))
    insert_job(pg_db, created_at=now)  # fresh: its message is probably in flight
    report = sweeper.sweep(runtime, now=now)
    assert report.resent_pending == [stuck.id]
    assert _sent_ids(queue) == [str(stuck.id)]
    assert sweeper.sweep(runtime, now=now).resent_pending == []  # running twice sends nothing twice
    assert drain(queue) == []


def test_stale_processing_jobs_are_resent_or_marked_abandoned(pg_db: DB, queue: Queue, runtime: Runtime) -> None:
    long_ago = utcnow() - timedelta(hours=1)
    retry = insert_job(pg_db, status=JobStatus.PROCESSING, attempts=1, max_attempts=5, started_at=long_ago)
    dead = insert_job(pg_db, status=JobStatus.PROCESSING, attempts=5, max_attempts=5, started_at=long_ago)
    live = insert_job(pg_db, status=JobStatus.PROCESSING, attempts=1, started_at=utcnow())
    report = sweeper.sweep(runtime)
    assert report.resent_stale == [retry.id]
    assert report.abandoned == [dead.id]
    assert _sent_ids(queue) == [str(retry.id)]
    dead_row = get_job(pg_db, dead.id)
    assert dead_row is not None and dead_row.status is JobStatus.FAILED
    assert dead_row.error == "abandoned: worker did not finish"
    assert get_job(pg_db, live.id) == live
    assert sweeper.sweep(runtime).abandoned == []


def test_sqs_still_down_leaves_jobs_pending_for_the_next_run(pg_db: DB, queue: Queue, runtime: Runtime) -> None:
    stuck = insert_job(pg_db, created_at=utcnow() - timedelta(minutes=30))
    broken = Runtime(runtime.config, db=pg_db, sqs=FlakySqs(queue.client, fail_sends=True))
    report = sweeper.sweep(broken)
    assert list(report.send_failures) == [stuck.id]
    assert report.resent_pending == []
    assert sweeper.sweep(runtime).resent_pending == [stuck.id]  # not touched, so the next run retries it


def test_sweeper_entry_point_reports_counts(
    monkeypatch: pytest.MonkeyPatch, pg_url: str, pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    for name, value in {"DATABASE_URL": pg_url, "QUEUE_URL": queue.url, "DLQ_URL": dlq.url}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sweeper, "_runtime", None)
    insert_job(pg_db, created_at=utcnow() - timedelta(hours=1))
    result: dict[str, Any] = sweeper.handler({}, None)
    assert result == {"resent_pending": 1, "resent_stale": 0, "abandoned": 0, "send_failures": 0}
    assert sweeper._runtime is not None
    sweeper._runtime.close()
