"""Run later: within SQS's 15 minutes a job's message carries the wait as DelaySeconds; beyond, the row is
`scheduled` and the sweeper releases it, 15 minutes ahead, with the rest of the wait as DelaySeconds, so
it runs at its time to the second. Releasing is safe to run twice and concurrently, retries refused
sends, and catches up after downtime. Real PostgreSQL, moto, the real sweeper.

AWS's rules the expected answers follow (StrictSqs holds moto to them): DelaySeconds is 0-900 per message
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html), and a FIFO
queue takes no per-message delay ("you can't set DelaySeconds per message" on FIFO queues, same page).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from db import DB, JobRequest, JobStatus, Queue, get_job, publish, publish_many, take_due, utcnow
from tests.support.esm import drain
from worker.runtime import Runtime
from worker.sweeper import sweep

pytestmark = pytest.mark.integration


class Recording:
    """The queue's client, remembering each entry's DelaySeconds; `refuse` makes SendMessageBatch fail."""

    def __init__(self, client: Any) -> None:
        self._client, self.refuse = client, False
        self.delays: dict[str, int] = {}

    def send_message(self, **kwargs: Any) -> Any:
        self.delays[kwargs["MessageBody"]] = kwargs.get("DelaySeconds", 0)
        return self._client.send_message(**kwargs)

    def send_message_batch(self, **kwargs: Any) -> Any:
        if self.refuse:
            raise ConnectionError("SQS unreachable")
        for entry in kwargs["Entries"]:
            self.delays[entry["MessageBody"]] = entry.get("DelaySeconds", 0)
        return self._client.send_message_batch(**kwargs)

    def delay_of(self, job_id: UUID) -> int:
        return int(next(d for body, d in self.delays.items() if str(job_id) in body))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def recorded(queue: Queue, runtime: Runtime) -> Recording:
    recording = Recording(queue.client)
    runtime.__dict__["sqs"] = recording
    return recording


def test_within_fifteen_minutes_the_message_waits_in_sqs(pg_db: DB, queue: Queue, recorded: Recording) -> None:
    job = publish(pg_db, "test-echo", {}, queue=Queue(recorded, queue.url), delay=timedelta(minutes=10))
    assert job.status is JobStatus.PENDING and job.run_at is not None
    assert 599 <= recorded.delay_of(job.id) <= 600


def test_beyond_it_the_sweeper_releases_the_job_to_run_at_its_time(
    pg_db: DB, queue: Queue, runtime: Runtime, recorded: Recording
) -> None:
    run_at = (utcnow() + timedelta(hours=3)).replace(microsecond=0)
    job = publish(pg_db, "test-echo", {"n": 1}, queue=queue, run_at=run_at)
    assert job.status is JobStatus.SCHEDULED and drain(queue) == [] and recorded.delays == {}

    assert sweep(runtime, now=run_at - timedelta(minutes=20)).released == [], "not yet within 15 minutes"
    report = sweep(runtime, now=run_at - timedelta(minutes=12))
    assert report.released == [job.id]
    assert recorded.delay_of(job.id) == 12 * 60, "the rest of the wait rides on the message"
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.PENDING and row.sent_at is not None
    assert sweep(runtime, now=run_at - timedelta(minutes=11)).released == [], "released once"


def test_a_refused_release_is_retried_and_overdue_jobs_go_out_at_once(
    pg_db: DB, queue: Queue, runtime: Runtime, recorded: Recording
) -> None:
    run_at = utcnow() + timedelta(days=2)
    [job] = publish_many(pg_db, [JobRequest("test-echo", {}, run_at=run_at)], queue=queue)
    recorded.refuse = True
    report = sweep(runtime, now=run_at - timedelta(minutes=5))
    assert report.released == [] and job.id in report.send_failures
    assert get_job(pg_db, job.id).status is JobStatus.SCHEDULED  # type: ignore[union-attr]
    recorded.refuse = False
    later = run_at + timedelta(hours=6)  # the sweeper was down; the job is overdue
    assert sweep(runtime, now=later).released == [job.id]
    assert recorded.delay_of(job.id) == 0


def test_concurrent_releasers_take_each_due_job_once(pg_db: DB, queue: Queue) -> None:
    """A due job is sent exactly once under concurrent releasers: each takes rows the other does not."""
    run_at = utcnow() + timedelta(hours=1)
    jobs = publish_many(pg_db, [JobRequest("test-echo", {"n": n}, run_at=run_at) for n in range(300)], queue=queue)
    taken: list[list[UUID]] = [[], [], []]
    start = threading.Barrier(3)

    def releaser(slot: int) -> None:
        start.wait()
        while batch := take_due(pg_db, horizon=run_at, limit=25):
            taken[slot] += [j.id for j in batch]

    threads = [threading.Thread(target=releaser, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [job_id for slot in taken for job_id in slot]
    assert sorted(every) == sorted(j.id for j in jobs), "every due job taken, none twice"


def test_run_later_refuses_what_it_cannot_keep(pg_db: DB, queue: Queue) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        publish(pg_db, "test-echo", {}, queue=queue, run_at=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="at most 366 days ahead"):
        publish(pg_db, "test-echo", {}, queue=queue, run_at=datetime.now(UTC) + timedelta(days=400))
    with pytest.raises(ValueError, match="give run_at or delay, not both"):
        publish(pg_db, "test-echo", {}, queue=queue, run_at=datetime.now(UTC), delay=timedelta(hours=1))
    assert drain(queue) == []
