"""Snooze: a handler asks to run again later, without using an attempt, through the worker's batch entry
against PostgreSQL and moto. The returned message's visibility is its wait (ChangeMessageVisibility; at most
12 hours, https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html);
the row waits as pending with that run_at, which the claim's due check enforces."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from db import DB, JobStatus, Queue, get_job, publish
from tests.support.esm import FakeLambdaContext, acknowledge, receive_event
from tests.support.worker_support import Calls
from worker.batch import process_batch
from worker.exceptions import Snooze
from worker.outcomes import Decision, Outcome
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


def _deliver(queue: Queue, runtime: Runtime) -> dict[str, Any]:
    event = receive_event(queue)
    assert event["Records"], "expected the message back"
    response = process_batch(event, FakeLambdaContext(), runtime)
    acknowledge(queue, event, response)
    return response


@pytest.mark.parametrize("how", ["raise", "return"])
def test_a_snoozed_job_runs_again_after_its_delay_with_its_attempts_unchanged(
    pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls, how: str
) -> None:
    def not_ready_once(ctx: Any) -> object:
        if len(calls.runs) == 1:
            if how == "raise":
                raise Snooze(1)
            return ctx.snooze(1)
        return None

    calls.behaviour = not_ready_once
    job = publish(pg_db, "count-calls", {}, queue=queue)
    response = _deliver(queue, runtime)
    assert len(response["batchItemFailures"]) == 1  # returned, not deleted
    waiting = get_job(pg_db, job.id)
    assert waiting is not None and waiting.status is JobStatus.PENDING and waiting.attempts == 0
    assert waiting.run_at is not None
    assert receive_event(queue)["Records"] == []  # hidden for its wait
    time.sleep(1.2)
    assert _deliver(queue, runtime) == {"batchItemFailures": []}
    assert [run["attempt"] for run in calls.runs] == [1, 1]  # the snooze did not use the attempt
    done = get_job(pg_db, job.id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.attempts == 1


def test_a_snoozed_job_delivered_early_is_returned_unrun(
    pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message that comes back before the job's run_at (a fresh copy near the receive limit is delayed at
    most 15 minutes; a snooze may be longer) is returned by the claim's due check, unrun, no attempt used."""

    def snooze_first(ctx: Any) -> object:
        return ctx.snooze(3600) if len(calls.runs) == 1 else None

    calls.behaviour = snooze_first
    job = publish(pg_db, "count-calls", {}, queue=queue)
    seen: list[Decision] = []
    monkeypatch.setattr("worker.tracing.log_outcome", lambda decision, _ms, _trace: seen.append(decision))
    _deliver(queue, runtime)
    snoozed = seen[-1]
    assert snoozed.outcome is Outcome.SNOOZED
    assert snoozed.visibility_seconds == 3600
    assert receive_event(queue)["Records"] == []  # hidden for the snooze
    queue.client.send_message(QueueUrl=queue.url, MessageBody=_body(job.id))  # an early copy
    response = _deliver(queue, runtime)
    assert len(response["batchItemFailures"]) == 1 and len(calls.runs) == 1
    early = seen[-1]
    assert early.outcome is Outcome.DEFERRED
    assert 3590 <= (early.visibility_seconds or 0) <= 3600
    row = get_job(pg_db, job.id)
    assert row is not None and row.attempts == 0 and row.status is JobStatus.PENDING


def test_snooze_out_of_range_fails_the_job_with_one_line(
    pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls
) -> None:
    calls.behaviour = lambda ctx: ctx.snooze(0)
    job = publish(pg_db, "count-calls", {}, queue=queue)
    _deliver(queue, runtime)
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.FAILED
    assert row.error == "ValueError: Snooze takes 1 to 31622400 seconds, got 0"


def _body(job_id: Any) -> str:
    return json.dumps({"jobId": str(job_id), "type": "count-calls", "payload": {}})
