"""Unique jobs while they wait to start, and the debounce (on_conflict="replace"), against PostgreSQL (and
SQLite where it says so) and moto, through `publish` and the worker's batch."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from db import DB, JobRequest, JobStatus, Queue, claim_job, create_db, get_job, publish, publish_many, utcnow
from tests.support.esm import FakeLambdaContext, acknowledge, receive_event
from tests.support.worker_support import Calls
from worker.batch import process_batch
from worker.runtime import Runtime

pytestmark = pytest.mark.integration
STALE = timedelta(minutes=5)


def _jobs(db: DB) -> list[tuple[Any, ...]]:
    with db.begin() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT id, status, payload FROM background_jobs"))]


def test_fifty_concurrent_publishes_with_one_key_make_one_job(pg_url: str, pg_db: DB, queue: Queue) -> None:
    """The partial unique index arbitrates: every caller gets the same job, and one message is sent."""
    db = create_db(pg_url, pool_size=50)
    barrier = threading.Barrier(50)
    got: list[Any] = []
    lock = threading.Lock()

    def publisher(n: int) -> None:
        barrier.wait()
        job = publish(db, "test-echo", {"n": n}, queue=queue, unique_key="refresh:user:42")
        with lock:
            got.append(job.id)

    threads = [threading.Thread(target=publisher, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.dispose()
    assert len(got) == 50 and len(set(got)) == 1
    assert len(_jobs(pg_db)) == 1
    messages = queue.client.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessages"])
    assert messages["Attributes"]["ApproximateNumberOfMessages"] == "1"


def test_once_it_has_started_the_key_is_free(any_db: DB, queue: Queue) -> None:
    """Unlike an idempotency key (one job forever), a unique key holds only while its job waits to start;
    another payload under the same key is no error, it returns the waiting job."""
    first = publish(any_db, "test-echo", {"n": 1}, queue=queue, unique_key="k")
    assert publish(any_db, "test-echo", {"n": 2}, queue=queue, unique_key="k").id == first.id
    assert publish(any_db, "welcome-email", {"user_id": 1, "email": "a@example.com"}, queue=queue, unique_key="k")
    claim = claim_job(any_db, first.id, stale_after=STALE)
    assert claim.job is not None
    second = publish(any_db, "test-echo", {"n": 3}, queue=queue, unique_key="k")
    assert second.id != first.id and second.status is JobStatus.PENDING
    batch = publish_many(any_db, [JobRequest("test-echo", {"n": n}, unique_key="k") for n in (4, 5)], queue=queue)
    assert {job.id for job in batch} == {second.id}


def test_twenty_replacing_publishes_leave_one_job_with_the_last_payload(
    pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls
) -> None:
    """A debounce: each publish pushes the run back and carries its payload; the job runs once, with the
    last payload, when the last run_at comes. Its message (sent by the first publish) arrives early: the
    worker returns it unclaimed until then (no attempt used)."""
    jobs = [
        publish(
            pg_db,
            "count-calls",
            {"n": n},
            queue=queue,
            unique_key="reindex",
            on_conflict="replace",
            delay=timedelta(seconds=2),
        )
        for n in range(20)
    ]
    assert len({job.id for job in jobs}) == 1
    [(job_id, status, payload)] = _jobs(pg_db)
    assert status == "pending" and payload == {"n": 19}
    row = get_job(pg_db, job_id)
    assert row is not None and row.run_at is not None and row.run_at > jobs[0].run_at  # type: ignore[operator]
    with pg_db.begin() as conn:  # the first publish's message is due; the job's run_at is a minute ahead
        conn.execute(text("UPDATE background_jobs SET run_at = :at"), {"at": utcnow() + timedelta(minutes=1)})
    queue.client.change_message_visibility(
        QueueUrl=queue.url,
        ReceiptHandle=queue.client.receive_message(QueueUrl=queue.url, WaitTimeSeconds=3)["Messages"][0][
            "ReceiptHandle"
        ],
        VisibilityTimeout=0,
    )
    event = receive_event(queue)
    response = process_batch(event, FakeLambdaContext(), runtime)
    assert len(response["batchItemFailures"]) == 1 and calls.runs == []
    early = get_job(pg_db, job_id)
    assert early is not None and early.status is JobStatus.PENDING and early.attempts == 0
    with pg_db.begin() as conn:  # now due
        conn.execute(text("UPDATE background_jobs SET run_at = :at"), {"at": utcnow() - timedelta(seconds=1)})
    queue.client.change_message_visibility(
        QueueUrl=queue.url, ReceiptHandle=event["Records"][0]["receiptHandle"], VisibilityTimeout=0
    )
    again = receive_event(queue)
    acknowledge(queue, again, process_batch(again, FakeLambdaContext(), runtime))
    assert [run["payload"] for run in calls.runs] == [{"n": 19}]


def test_replacing_a_scheduled_job_due_soon_sends_it_now(pg_db: DB, queue: Queue) -> None:
    """A scheduled job (no message) whose replacement is due within SQS's 15 minutes becomes pending and is
    sent by that publish, with the rest of its wait as its delay: the sweeper would release it late."""
    far = publish(pg_db, "test-echo", {"n": 1}, queue=queue, unique_key="d", delay=timedelta(hours=2))
    assert far.status is JobStatus.SCHEDULED and far.sent_at is None
    soon = publish(
        pg_db, "test-echo", {"n": 2}, queue=queue, unique_key="d", on_conflict="replace", delay=timedelta(minutes=5)
    )
    assert soon.id == far.id and soon.status is JobStatus.PENDING and soon.sent_at is not None
    assert soon.payload == {"n": 2} and soon.send_count == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_conflict": "merge", "unique_key": "k"}, "on_conflict must be one of 'keep', 'replace', got 'merge'"),
        ({"on_conflict": "replace"}, 'on_conflict="replace" needs a unique_key: the key of the waiting job to replace'),
        ({"unique_key": "x" * 256}, "unique_key must be 1-255 characters"),
    ],
)
def test_bad_unique_arguments_are_one_line_and_write_nothing(
    pg_db: DB, queue: Queue, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=r"unique_key|on_conflict") as raised:
        publish(pg_db, "test-echo", {}, queue=queue, **kwargs)
    assert str(raised.value) == message
    assert _jobs(pg_db) == []
