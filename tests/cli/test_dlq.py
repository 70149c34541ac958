"""`jobs dlq`: peek leaves messages in place, redrive sends before it deletes (a crash duplicates, never
loses), purge asks first."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from cli import dlq as dead_letters
from db import DB, JobStatus, Queue, get_job, publish
from tests.cli.conftest import Jobs
from tests.worker.esm import FakeLambdaContext, acknowledge, drain, receive_event
from worker.batch import process_batch
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


def dead_letter_one(pg_db: DB, queue: Queue, runtime: Runtime) -> Any:
    """A job that failed its only attempt, dead-lettered by the real worker."""
    job = publish(pg_db, "test-echo", {"fail": "bad card"}, queue=queue, max_attempts=1)
    event = receive_event(queue)
    acknowledge(queue, event, process_batch(event, FakeLambdaContext(), runtime))
    return job


def test_peek_shows_dead_letters_and_leaves_them_visible(
    jobs: Jobs, pg_db: DB, queue: Queue, dlq: Queue, runtime: Runtime
) -> None:
    job = dead_letter_one(pg_db, queue, runtime)
    result = jobs("dlq", "peek", "--json")
    assert result.code == 0
    [letter] = json.loads(result.out)
    assert letter["job_id"] == str(job.id)
    assert letter["kind"] == "failed"
    assert letter["error"] == "EchoFailure: bad card"
    assert len(drain(dlq)) == 1, "still there, and visible at once"


def test_redrive_gives_fresh_attempts_and_keeps_the_job_id(
    jobs: Jobs, pg_db: DB, queue: Queue, dlq: Queue, runtime: Runtime
) -> None:
    job = dead_letter_one(pg_db, queue, runtime)
    result = jobs("dlq", "redrive")
    assert result.code == 0
    assert "moved 1 message(s) to the main queue; 1 job(s) given fresh attempts" in result.out
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.PENDING and row.attempts == 0
    [message] = drain(queue)
    assert json.loads(message["Body"])["jobId"] == str(job.id)
    assert set(message["MessageAttributes"]) == {"jobType"}, "the worker's jobstack.* attributes stay behind"
    assert drain(dlq) == []


class DeleteCrashes:
    """The SQS client of a redrive process that dies after sending and before deleting."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def delete_message_batch(self, **_kwargs: Any) -> Any:
        raise ConnectionError("process killed")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_crash_between_send_and_delete_duplicates_and_never_loses(
    pg_db: DB, queue: Queue, dlq: Queue, runtime: Runtime
) -> None:
    job = dead_letter_one(pg_db, queue, runtime)
    with pytest.raises(ConnectionError):
        dead_letters.redrive(DeleteCrashes(queue.client), pg_db, dlq.url, queue.url, limit=10)
    # The message is now in both queues. The worker runs the job once...
    event = receive_event(queue)
    assert len(event["Records"]) == 1
    runs_before = job.attempts
    acknowledge(queue, event, process_batch(copy.deepcopy(event), FakeLambdaContext(), runtime))
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.FAILED and row.attempts == runs_before + 1  # still a bad card
    # ...and redriving the leftover copy later is safe: nothing lost, nothing run twice per attempt.
    dlq.client.change_message_visibility_batch(
        QueueUrl=dlq.url,
        Entries=[{"Id": "0", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for m in drain(dlq)],
    )
    report = dead_letters.redrive(queue.client, pg_db, dlq.url, queue.url, limit=10)
    assert len(report.moved) == 1


def test_purge_needs_confirmation(jobs: Jobs, dlq: Queue) -> None:
    dlq.client.send_message(QueueUrl=dlq.url, MessageBody="{}")
    refused = jobs("dlq", "purge")
    assert refused.code == 2
    assert refused.err.strip() == "error: refusing to purge without confirmation: pass --yes"
    assert len(drain(dlq)) == 1
    assert jobs("dlq", "purge", "--yes").code == 0
