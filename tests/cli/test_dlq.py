"""`jobstack dlq`: peek leaves messages in place, redrive sends before it deletes (a crash duplicates, never
loses), purge asks first.

Redrive counts the DLQ first with ApproximateNumberOfMessages, which AWS documents as approximate
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html): the
count only bounds the run; stopping at a message already seen is what ends it when the count is off.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from cli import dlq as dead_letters
from db import DB, JobStatus, Queue, get_job, publish
from tests.support.cli_runner import Jobs
from tests.support.esm import FakeLambdaContext, acknowledge, drain, receive_event
from tests.support.worker_support import Calls
from worker.batch import process_batch
from worker.contract import DeadLetterKind
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
    assert letter["arrived_at"] == letter["sent_at"] is not None, "the worker sent it: its send is its arrival"
    assert len(drain(dlq)) == 1, "still there, and visible at once"


def test_a_letter_sqs_moved_from_a_standard_queue_has_no_known_arrival(jobs: Jobs, dlq: Queue) -> None:
    """SQS keeps a moved message's first enqueue time on a standard queue (SQS Developer Guide, "Setting-up
    dead-letter queue retention"): that is not when it arrived, so it is not shown as such."""
    dlq.client.send_message(QueueUrl=dlq.url, MessageBody='{"jobId": "0b6f1f6e-8f4e-4d59-9a43-3c1c0f0e7a11"}')
    [letter] = json.loads(jobs("dlq", "peek", "--json").out)
    assert letter["arrived_at"] is None and letter["sent_at"] is not None
    assert "-" in jobs("dlq", "peek").out.splitlines()[1].split()


def test_a_dead_letter_of_a_job_retried_since_is_deleted_by_redrive_not_sent_again(
    jobs: Jobs, pg_db: DB, queue: Queue, dlq: Queue, runtime: Runtime
) -> None:
    """Reported: `jobstack retry ID` left the job's dead letter in the DLQ, a later redrive moved it too, and one
    job got two messages ("moved 2 ... 2 jobs given fresh attempts"). The letter is superseded: deleted,
    counted, and the job keeps the one message its retry sent."""
    job = dead_letter_one(pg_db, queue, runtime)
    assert jobs("retry", str(job.id)).code == 0
    [retried] = drain(queue)
    assert [k["kind"] for k in json.loads(jobs("dlq", "peek", "--json").out)] == ["superseded"]
    result = jobs("dlq", "redrive")
    assert result.code == 0
    assert "moved 0 to the main queue; 0 job(s) given fresh attempts" in result.out
    assert "deleted 1 dead letter(s) whose jobs had moved on since (retried, finished or running)" in result.out
    assert drain(queue) == [] and drain(dlq) == []
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.PENDING and row.send_count == 2  # publish, then retry
    assert json.loads(retried["Body"])["jobId"] == str(job.id)


def test_redrive_gives_fresh_attempts_and_keeps_the_job_id(
    jobs: Jobs, pg_db: DB, queue: Queue, dlq: Queue, runtime: Runtime
) -> None:
    job = dead_letter_one(pg_db, queue, runtime)
    result = jobs("dlq", "redrive")
    assert result.code == 0
    assert "at the start; moved 1 to the main queue (by kind: failed 1); 1 job(s) given fresh attempts" in result.out
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
    assert report.moved == {"failed": 1}


class WorkerAlongside:
    """The SQS client of a redrive while the worker runs: every message sent back to the main queue is
    processed at once, and a job that fails again is dead-lettered again, as a new DLQ message."""

    def __init__(self, queue: Queue, runtime: Runtime) -> None:
        self._client, self._queue, self._runtime = queue.client, queue, runtime

    def send_message_batch(self, **kwargs: Any) -> Any:
        response = self._client.send_message_batch(**kwargs)
        if kwargs["QueueUrl"] == self._queue.url:
            event = receive_event(self._queue)
            acknowledge(self._queue, event, process_batch(event, FakeLambdaContext(), self._runtime))
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_redrive_ends_while_the_worker_dead_letters_again_and_moves_each_job_once(
    pg_db: DB, queue: Queue, dlq: Queue, runtime: Runtime
) -> None:
    """Reported: with the worker running, four redrives of 2 messages said moved 3, 7, 15, 25, and a
    malformed message was dead-lettered 47 times. A redrive handles what was there when it started."""
    jobs_ = [dead_letter_one(pg_db, queue, runtime) for _ in range(2)]
    dlq.client.send_message(
        QueueUrl=dlq.url,
        MessageBody="not json",
        MessageAttributes={"jobstack.error-kind": {"DataType": "String", "StringValue": "malformed"}},
    )
    for _ in range(4):
        report = dead_letters.redrive(WorkerAlongside(queue, runtime), pg_db, dlq.url, queue.url, limit=1000)
        assert report.present == 3
        assert report.moved == {"failed": 2}
        assert report.skipped == {"malformed": 1}
        assert sorted(report.requeued_jobs) == sorted(j.id for j in jobs_)
    bodies = [m["Body"] for m in drain(dlq)]
    assert bodies.count("not json") == 1, "skipped, never multiplied"
    again = sorted(json.loads(b)["jobId"] for b in bodies if b != "not json")
    assert again == sorted(str(j.id) for j in jobs_), "each job dead-lettered once more, by the worker"


def test_kinds_that_can_never_succeed_stay_unless_included(
    jobs: Jobs, pg_db: DB, queue: Queue, dlq: Queue, runtime: Runtime
) -> None:
    job = dead_letter_one(pg_db, queue, runtime)
    orphan = json.dumps({"jobId": "6f1f5a52-3d5e-4d7b-9a53-0d3c1c1c1c1c", "type": "test-echo", "payload": {}})
    dlq.client.send_message(QueueUrl=dlq.url, MessageBody=orphan)  # SQS's own redrive: no kind of ours, no row
    peek = jobs("dlq", "peek")
    assert "no row (published without publish()?)" in peek.out
    result = jobs("dlq", "redrive")
    assert result.code == 0
    assert "moved 1 to the main queue (by kind: failed 1)" in result.out
    assert "left 1 in the DLQ that no redrive can fix (by kind: not_found 1)" in result.out
    assert [json.loads(m["Body"])["jobId"] for m in drain(queue)] == [str(job.id)]
    assert [m["Body"] for m in drain(dlq)] == [orphan]
    dlq.client.send_message(QueueUrl=dlq.url, MessageBody=orphan)
    result = jobs("dlq", "redrive", "--include", "not_found", "--json")
    assert json.loads(result.out)["moved"] == {"not_found": 1}
    assert [m["Body"] for m in drain(queue)] == [orphan]


def test_purge_needs_confirmation(jobs: Jobs, dlq: Queue) -> None:
    dlq.client.send_message(QueueUrl=dlq.url, MessageBody="{}")
    refused = jobs("dlq", "purge")
    assert refused.code == 2
    assert refused.err.strip() == "error: refusing to purge without confirmation: pass --yes"
    assert len(drain(dlq)) == 1
    assert jobs("dlq", "purge", "--yes").code == 0


def test_jobs_dlq_reads_the_kind_and_reason_the_worker_writes(
    pg_db: DB, queue: Queue, dlq: Queue, runtime: Runtime, calls: Calls
) -> None:
    """The dead-letter attributes are a contract between the worker (writer) and `jobstack dlq` (reader),
    written once in worker/contract.py: a real dead letter from a real batch is read back by the CLI."""
    publish(pg_db, "test-echo", {"fail": "card declined"}, queue=queue, max_attempts=1)
    process_batch(receive_event(queue), FakeLambdaContext(), runtime)
    [letter] = dead_letters.receive(queue.client, dlq.url, 10, hold_seconds=30)
    assert (letter.kind, letter.reason) == (DeadLetterKind.FAILED, "EchoFailure: card declined")
    assert dead_letters.kinds_of([letter], pg_db) == [DeadLetterKind.FAILED]
