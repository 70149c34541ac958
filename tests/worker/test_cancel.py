"""Cancelling jobs: a waiting job's message is acknowledged without running it; a running job is asked to
stop (ctx.cancel_requested()) and, if it stops by raising, is cancelled rather than retried; one that
ignores the request finishes; a completed job cannot be cancelled. Real PostgreSQL, moto, the real batch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from db import DB, CancelReport, JobStatus, Queue, cancel_jobs, get_job, publish
from tests.support import esm
from tests.support.esm import drain
from tests.support.worker_support import Calls
from worker.batch import process_batch
from worker.registry import JobContext
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


def _deliver(queue: Queue, runtime: Runtime) -> dict[str, list[dict[str, str]]]:
    return esm.deliver(queue, lambda event, ctx: process_batch(event, ctx, runtime))[1]


def test_a_cancelled_job_is_acknowledged_without_running(
    pg_db: DB,
    queue: Queue,
    runtime: Runtime,
    calls: Calls,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOBSTACK_EMF", "1")  # the metrics Lambda would print
    job = publish(pg_db, "count-calls", {"n": 1}, queue=queue)
    assert cancel_jobs(pg_db, [job.id]) == CancelReport(cancelled=[job.id], asked_to_stop=[], refused={}, missing=[])
    assert _deliver(queue, runtime) == {"batchItemFailures": []}
    assert calls.runs == []
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.CANCELLED and row.attempts == 0
    assert drain(queue) == []
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(doc.get("JobsCancelled") == 1 for doc in emf), "counted as cancelled"


def test_a_running_job_asked_to_stop_that_stops_is_cancelled_not_retried(
    pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls
) -> None:
    job = publish(pg_db, "count-calls", {}, queue=queue)

    def long_job(ctx: JobContext) -> None:
        report = cancel_jobs(pg_db, [ctx.job_id])  # an operator, while the handler runs
        assert report.asked_to_stop == [ctx.job_id] and report.cancelled == []
        if ctx.cancel_requested():
            raise RuntimeError("stopping: cancelled")

    calls.behaviour = long_job
    assert _deliver(queue, runtime) == {"batchItemFailures": []}, "acknowledged: not retried"
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.CANCELLED and row.attempts == 1
    assert len(calls.runs) == 1 and drain(queue) == []


def test_a_running_job_that_ignores_the_request_finishes(
    pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls
) -> None:
    job = publish(pg_db, "count-calls", {}, queue=queue)

    def cancelled_meanwhile(ctx: Any) -> None:  # the handler returns nothing: it finishes as if not asked
        cancel_jobs(pg_db, [ctx.job_id])

    calls.behaviour = cancelled_meanwhile
    assert _deliver(queue, runtime) == {"batchItemFailures": []}
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED and row.cancel_requested_at is not None
