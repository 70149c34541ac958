"""Jobs that wait for the world (db/waits.py, `ctx.wait_for_signal`, `ctx.sleep`), through the worker's batch
entry on both databases and moto's SQS, the event source mapping played as AWS plays it: a waiting job has no
message in flight and no invocation running; a signal committed elsewhere resumes it exactly once, one in a
transaction that rolls back never does; a signal sent first is kept for the wait; a timeout resumes it with the
timeout result (by the sweeper); a durable sleep past SQS's 15 minutes is released by the sweeper, its steps not
run again."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.orm import Session

from db import DB, JobStatus, Queue, get_job, publish, signal, signal_now, utcnow
from db.models import jobs_table, steps_table
from db.waits import kept_signals
from tests.support.esm import FakeLambdaContext, deliver, receive_event
from tests.support.worker_support import fifo_pair, job_type_for_test, make_config
from worker.batch import process_batch
from worker.contract import BATCHED, PER_JOB
from worker.registry import JobContext
from worker.runtime import Runtime
from worker.sweeper import sweep

pytestmark = pytest.mark.integration


class Refund(BaseModel):
    n: int


def _runtime(db: DB, queue: Queue, dlq: Queue, completion: str = PER_JOB) -> Runtime:
    url = db.engine.url.render_as_string(hide_password=False)
    config = make_config(url, queue, dlq, backoff_base_seconds=0, completion=completion)
    return Runtime(config, db=db, sqs=queue.client)


def _batch(queue: Queue, runtime: Runtime) -> dict[str, Any]:
    """One poll of the event source mapping into the worker's batch entry: its response."""
    return deliver(queue, lambda event, context: process_batch(event, context, runtime))[1]


def _in_flight(queue: Queue) -> int:
    """Messages visible, delayed or invisible (received, not deleted): everything SQS still holds."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = queue.client.get_queue_attributes(QueueUrl=queue.url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


class Recorder:
    def __init__(self) -> None:
        self.prepared, self.resumed = 0, []  # type: ignore[var-annotated]
        self.lock = threading.Lock()

    def __call__(self, ctx: JobContext) -> Any:
        ctx.step("prepare", self._prepare)
        got = ctx.wait_for_signal(f"refund-approval:{ctx.payload['n']}", timeout=timedelta(days=2))
        with self.lock:
            self.resumed.append((got.payload, got.timed_out))
        return {"approved": None if got.timed_out else got.payload["approved"], "timed_out": got.timed_out}

    def _prepare(self) -> int:
        self.prepared += 1
        return self.prepared


@pytest.fixture
def refunds() -> Any:
    recorder = Recorder()
    with job_type_for_test("refund", Refund, recorder, max_attempts=3):
        yield recorder


@pytest.mark.parametrize("completion", [PER_JOB, BATCHED])
def test_a_job_waits_with_nothing_in_flight_and_a_committed_signal_resumes_it_once(
    any_db: DB, queue: Queue, dlq: Queue, refunds: Recorder, completion: str
) -> None:
    runtime = _runtime(any_db, queue, dlq, completion)
    job = publish(any_db, "refund", {"n": 4711}, queue=queue)
    assert _batch(queue, runtime) == {"batchItemFailures": []}
    waiting = get_job(any_db, job.id)
    assert waiting is not None and waiting.status is JobStatus.WAITING
    assert (waiting.wait_key, waiting.attempts) == ("refund-approval:4711", 0), "the attempt given back"
    assert _in_flight(queue) == 0, "no message in flight while it waits"

    with any_db.engine.connect() as conn:  # a transaction that rolls back
        transaction = conn.begin()
        sent = signal(conn, "refund-approval:4711", {"approved": True})
        assert [j.id for j in sent.released] == [job.id]
        transaction.rollback()
    still = get_job(any_db, job.id)
    assert still is not None and still.status is JobStatus.WAITING and _in_flight(queue) == 0
    assert kept_signals(any_db) == [], "nothing kept either: it rolled back"

    with Session(any_db.engine) as session:  # the web app's own transaction
        sent = signal(session, "refund-approval:4711", {"approved": True}, queue=queue)
        assert _in_flight(queue) == 0, "sent only once the transaction commits"
        session.commit()
    assert _in_flight(queue) == 1
    _batch(queue, runtime)
    done = get_job(any_db, job.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done
    assert done.result == {"approved": True, "timed_out": False} and done.attempts == 1
    assert refunds.prepared == 1 and refunds.resumed == [({"approved": True}, False)], "resumed once, steps not re-run"

    again = signal_now(any_db, "refund-approval:4711", {"approved": False}, queue=queue)
    assert again.released == () and again.kept, "nobody waits now: kept for a later wait"


def test_a_signal_sent_before_the_wait_is_kept_for_it_and_the_first_kept_one_stands(
    any_db: DB, queue: Queue, dlq: Queue, refunds: Recorder
) -> None:
    first = signal_now(any_db, "refund-approval:7", {"approved": True}, queue=queue)
    second = signal_now(any_db, "refund-approval:7", {"approved": False}, queue=queue)
    assert (first.kept, second.kept) == (True, False)
    job = publish(any_db, "refund", {"n": 7}, queue=queue)
    _batch(queue, _runtime(any_db, queue, dlq))
    done = get_job(any_db, job.id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.result["approved"] is True
    assert kept_signals(any_db) == [], "taken by the wait"


def test_a_wait_past_its_timeout_resumes_with_the_timeout_result(
    any_db: DB, queue: Queue, dlq: Queue, refunds: Recorder
) -> None:
    runtime = _runtime(any_db, queue, dlq)
    job = publish(any_db, "refund", {"n": 9}, queue=queue)
    _batch(queue, runtime)
    report = sweep(runtime)
    assert report.timed_out == [], "not due yet"
    with any_db.begin() as conn:  # two days later
        conn.execute(update(jobs_table).where(jobs_table.c.id == job.id).values(run_at=jobs_table.c.created_at))
    assert sweep(runtime).timed_out == [job.id]
    _batch(queue, runtime)
    done = get_job(any_db, job.id)
    assert done is not None and done.result == {"approved": None, "timed_out": True}
    assert signal_now(any_db, "refund-approval:9", {"approved": True}, queue=queue).released == (), "too late"


def test_fifty_concurrent_signals_to_one_key_resume_the_job_once(
    pg_db: DB, queue: Queue, dlq: Queue, refunds: Recorder
) -> None:
    runtime = _runtime(pg_db, queue, dlq)
    job = publish(pg_db, "refund", {"n": 50}, queue=queue)
    _batch(queue, runtime)
    results: list[Any] = []
    barrier = threading.Barrier(10)

    def send(n: int) -> None:
        barrier.wait()
        for i in range(5):
            results.append(signal_now(pg_db, "refund-approval:50", {"approved": True, "from": n * 5 + i}, queue=queue))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(r.released) for r in results) == 1, "one signal released the job"
    assert sum(r.kept for r in results) == 1, "one of the rest is kept, the others are no-ops"
    while _in_flight(queue):
        _batch(queue, runtime)
    done = get_job(pg_db, job.id)
    assert done is not None and done.status is JobStatus.COMPLETED and len(refunds.resumed) == 1


class Nap(BaseModel):
    minutes: int


def test_a_durable_sleep_past_sqs_delay_is_released_by_the_sweeper_and_steps_are_not_run_again(
    any_db: DB, queue: Queue, dlq: Queue
) -> None:
    ran: list[str] = []

    def naps(ctx: JobContext) -> str:
        ctx.step("before", lambda: ran.append("before"))
        ctx.sleep(timedelta(minutes=ctx.payload["minutes"]))
        ctx.step("after", lambda: ran.append("after"))
        return "woke"

    runtime = _runtime(any_db, queue, dlq)
    with job_type_for_test("nap", Nap, naps, max_attempts=2):
        long = publish(any_db, "nap", {"minutes": 20}, queue=queue)
        _batch(queue, runtime)
        slept = get_job(any_db, long.id)
        assert slept is not None and slept.status is JobStatus.SCHEDULED and slept.attempts == 0
        assert slept.run_at is not None and slept.run_at - slept.created_at >= timedelta(minutes=19)
        assert _in_flight(queue) == 0, "nothing in flight while it sleeps"
        assert sweep(runtime).released == [], "not within 15 minutes of its time yet"
        _twenty_minutes_pass(any_db, long.id)
        assert sweep(runtime).released == [long.id]
        _batch(queue, runtime)
        woke = get_job(any_db, long.id)
        assert woke is not None and woke.status is JobStatus.COMPLETED and woke.result == "woke"
        assert ran == ["before", "after"], "the step before the sleep ran once"

        short = publish(any_db, "nap", {"minutes": 10}, queue=queue)
        _batch(queue, runtime)
        snoozed = get_job(any_db, short.id)
        assert snoozed is not None and snoozed.status is JobStatus.PENDING and snoozed.run_at is not None
        assert _in_flight(queue) == 1, "within SQS's 15 minutes: its own message comes back when it is due"


def _twenty_minutes_pass(db: DB, job_id: Any) -> None:
    """The sleep's time, as the clock would make it: its row due, and its journaled wake-up time past."""
    past = utcnow() - timedelta(seconds=1)
    with db.begin() as conn:
        conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(run_at=past))
        conn.execute(
            update(steps_table)
            .where(steps_table.c.job_id == job_id, steps_table.c.name == "sleep:1")
            .values(result=json.dumps({"until": past.isoformat()}))
        )


def test_a_fifo_pools_job_cannot_wait_and_fails_in_one_line_keeping_its_groups_order(pg_db: DB, sqs: Any) -> None:
    """A FIFO group's later jobs wait behind the one in flight (SQS Developer Guide, "FIFO queue delivery
    logic"); a parked job's message is deleted, so the group would run on without it: refused."""
    queue, dlq = fifo_pair(sqs, "waits-fifo")

    def waits(ctx: JobContext) -> None:
        ctx.wait_for_signal("approval:fifo", timeout=timedelta(hours=1))

    with job_type_for_test("fifo-waits", Refund, waits, max_attempts=1):
        job = publish(pg_db, "fifo-waits", {"n": 1}, queue=queue, ordering_key="customer-7")
        event = receive_event(queue)
        process_batch(event, FakeLambdaContext(), _runtime(pg_db, queue, dlq))
    failed = get_job(pg_db, job.id)
    assert failed is not None and failed.status is JobStatus.FAILED and failed.wait_key is None
    assert failed.error is not None and failed.error.startswith(
        "FifoCannotWait: a FIFO pool's job cannot wait for signal 'approval:fifo': its group 'customer-7' would run"
    )


def test_time_spent_waiting_does_not_count_toward_max_duration(pg_db: DB, queue: Queue, dlq: Queue) -> None:
    """Crossing: a job's max_duration (a day by default) bounds its running time across slices; a two-day wait
    for an approval is not running time, so the steps after it run."""
    after: list[str] = []

    def approves(ctx: JobContext) -> str:
        ctx.step("before", lambda: "done")
        ctx.wait_for_signal("approval:long", timeout=timedelta(days=3))
        ctx.step("after", lambda: after.append("ran"))
        return "approved"

    runtime = _runtime(pg_db, queue, dlq)
    with job_type_for_test("long-approval", Refund, approves, max_attempts=2):
        job = publish(pg_db, "long-approval", {"n": 1}, queue=queue)
        _batch(queue, runtime)
        two_days_ago = utcnow() - timedelta(days=2)
        with pg_db.begin() as conn:  # the first step ran two days ago; the job has waited since
            conn.execute(update(steps_table).where(steps_table.c.job_id == job.id).values(
                started_at=two_days_ago, finished_at=two_days_ago))  # fmt: skip
        signal_now(pg_db, "approval:long", {"ok": True}, queue=queue)
        _batch(queue, runtime)
    done = get_job(pg_db, job.id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.result == "approved", done
    assert after == ["ran"]
