"""The job lifecycle under SQS's real semantics, through the Lambda entry points.

Every scenario calls `worker.handler.handler` (or `worker.sweeper.handler`) as Lambda would, configured
from the environment the stack sets, against real PostgreSQL and moto SQS behind StrictSqs (which refuses
what SQS refuses and moto accepts). "Lambda" here is `deliver`: receive as the event source mapping does,
invoke, then delete what the response acknowledges; a raised invocation deletes nothing. A throttled
receive is a receive that never reaches the function: SQS counts it toward maxReceiveCount all the same
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from pydantic import BaseModel
from sqlalchemy import text

import worker.handler
import worker.runtime
from db import (
    DB,
    ConfigError,
    IdempotencyConflict,
    JobRequest,
    JobStatus,
    PayloadTooLarge,
    PublishError,
    Queue,
    get_job,
    publish,
    publish_many,
    register_job_type,
    utcnow,
)
from db.job_types import unregister_job_type
from db.message import JobMessage
from db.sqs_limits import DLQ_ATTRIBUTE_RESERVE
from tests.support import esm
from tests.support.esm import FakeLambdaContext, drain, receive_event
from tests.support.factories import insert_job
from tests.support.pg_proxy import PostgresProxy
from tests.support.sqs_faults import FlakySqs
from tests.support.strict_sqs import StrictSqs
from tests.support.worker_support import Calls
from worker import registry, sweeper
from worker.exceptions import BatchFailed
from worker.metrics import MAX_DIMENSIONS, MAX_VALUES_PER_METRIC
from worker.transport import MAX_REASON_BYTES

JOB_TYPES_PAGE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "job-types.md"
Invoke = Callable[..., dict[str, Any]]


@pytest.fixture
def lambda_env(pg_url: str, queue: Queue, dlq: Queue, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The worker's environment as the dev stack sets it (timeout 60 s, maxReceiveCount 5), with retries
    due at once so a scenario runs in seconds."""
    env = {
        "DATABASE_URL": pg_url,
        "QUEUE_URL": queue.url,
        "DLQ_URL": dlq.url,
        "LOG_LEVEL": "WARNING",
        "JOB_FUNCTION_TIMEOUT_SECONDS": "60",
        "JOB_STALE_AFTER_SECONDS": "120",
        "JOB_MIN_TIME_LEFT_SECONDS": "2",
        "JOB_MAX_RECEIVE_COUNT": "5",
        "JOB_BACKOFF_BASE_SECONDS": "0",
    }
    for name in ("DATABASE_SECRET_ARN", "JOBSTACK_EMF"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def invoke(lambda_env: dict[str, str], sqs: StrictSqs) -> Iterator[Invoke]:
    """`worker.handler.handler` with the container built from the environment, its SQS client strict."""
    worker.handler.reset_runtime()

    def call(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        runtime = worker.handler.get_runtime()
        runtime.__dict__["sqs"] = sqs
        return worker.handler.handler(event, context or FakeLambdaContext())

    yield call
    worker.handler.reset_runtime()


def deliver(invoke: Invoke, queue: Queue, context: Any = None) -> dict[str, Any]:
    """One event source mapping poll (tests/support/esm.py): the response."""
    return esm.deliver(queue, invoke, context)[1]


def drive(invoke: Invoke, queue: Queue, polls: int = 30) -> int:
    """Deliver until nothing is visible (at most `polls` times); the number of polls that found work."""
    done = 0
    for _ in range(polls):
        event = receive_event(queue)
        if not event["Records"]:
            return done
        done += 1
        response = invoke(event)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for record in event["Records"]:
            if record["messageId"] not in failed:
                queue.client.delete_message(QueueUrl=queue.url, ReceiptHandle=record["receiptHandle"])
    return done


def throttle(queue: Queue) -> int:
    """A receive whose batch Lambda could not invoke (throttled): counted by SQS, never seen by the worker."""
    got = queue.client.receive_message(
        QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"]
    ).get("Messages", [])
    return len(got)


def in_queue(queue: Queue) -> int:
    attrs = queue.client.get_queue_attributes(
        QueueUrl=queue.url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def bodies(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(json.loads(m["Body"])["jobId"] for m in messages)


# 1 ─ deliveries that never ran the handler do not cost the job its attempts


def test_deferrals_and_throttles_never_cost_a_job_its_attempts(
    pg_db: DB, queue: Queue, dlq: Queue, invoke: Invoke, record: Any
) -> None:
    """A job always gets its max_attempts handler runs, and it is the worker that dead-letters it, with
    the reason, however many deliveries never ran it (deferred for time, throttled by Lambda).

    maxReceiveCount is 5 and max_attempts 5: two deferrals, two throttled receives, then five failures."""
    job = publish(pg_db, "test-echo", {"fail": "card declined"}, queue=queue)
    for _ in range(2):
        deliver(invoke, queue, FakeLambdaContext(timeout_ms=1_000))  # less than the 2 s needed to start
        assert throttle(queue) == 1
    drive(invoke, queue)
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.FAILED and row.attempts == 5
    [dead] = drain(dlq)
    assert dead["MessageAttributes"]["jobstack.error-kind"]["StringValue"] == "failed"
    assert dead["MessageAttributes"]["jobstack.error"]["StringValue"] == "EchoFailure: card declined"
    assert in_queue(queue) == 0
    record("handler runs", f"{row.attempts}/{row.max_attempts}")
    record("deliveries", int(dead["MessageAttributes"]["jobstack.receive-count"]["StringValue"]))


def test_a_failed_job_whose_message_sqs_redrove_is_resent_by_the_sweeper(
    pg_db: DB, queue: Queue, dlq: Queue, invoke: Invoke, calls: Calls, monkeypatch: pytest.MonkeyPatch, record: Any
) -> None:
    """A row left `failed` with attempts left and no message in the queue (SQS's redrive took it after
    throttled receives) is noticed by the sweeper and sent again, once; the job then completes."""
    calls.behaviour = lambda ctx: (_ for _ in ()).throw(RuntimeError("flaky")) if ctx.attempt == 1 else None
    job = publish(pg_db, "count-calls", {}, queue=queue)
    deliver(invoke, queue)
    while throttle(queue):  # throttled past maxReceiveCount: SQS moves it to the DLQ, reason-less
        pass
    assert in_queue(queue) == 0 and len(drain(dlq)) == 1
    monkeypatch.setenv("SWEEP_LOST_AFTER_SECONDS", "0")  # the window has passed
    worker.runtime.reset()
    summary = sweeper.handler({}, None)
    assert summary["resent_failed"] == 1
    assert sweeper.handler({}, None).get("resent_failed", 0) == 0  # once per failure, not once per run
    deliver(invoke, queue)
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED and row.attempts == 2
    assert row.send_count == 2
    record("sweeper re-sent", summary["resent_failed"])
    worker.runtime.reset()


# 2 ─ a wrong message never changes the right row


def test_a_wrong_message_never_changes_the_right_row(
    pg_db: DB, queue: Queue, dlq: Queue, invoke: Invoke, calls: Calls, record: Any
) -> None:
    """A message whose type disagrees with its row, or a garbled body that names a job, is dead-lettered
    with its reason and leaves the row untouched; the job's real message then completes it."""
    job = publish(pg_db, "count-calls", {"n": 1}, queue=queue)
    real = receive_event(queue)  # hold the real delivery back
    for body in (
        json.dumps({"jobId": str(job.id), "type": "test-echo", "payload": {}}),
        json.dumps({"jobId": str(job.id), "payload": {"n": 2}}),
    ):
        queue.client.send_message(QueueUrl=queue.url, MessageBody=body)
    deliver(invoke, queue)
    assert get_job(pg_db, job.id) == job
    invoke(real)
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED and row.attempts == 1
    kinds = sorted(m["MessageAttributes"]["jobstack.error-kind"]["StringValue"] for m in drain(dlq))
    assert kinds == ["malformed", "type_mismatch"]
    record("dead-lettered", len(kinds))


# 3 ─ the sweeper does not multiply messages


def test_the_sweeper_never_multiplies_a_backlog(
    pg_db: DB, queue: Queue, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, record: Any
) -> None:
    """With the worker paused, repeated sweeps send nothing for jobs whose message is queued; a job whose
    send was lost after its commit is sent once; a dead invocation's job is re-sent once, not every run."""
    queued = [publish(pg_db, "test-echo", {"n": n}, queue=queue) for n in range(3)]
    with pytest.raises(PublishError) as lost:
        publish(pg_db, "test-echo", {"n": 3}, queue=Queue(FlakySqs(queue.client, fail_sends=True), queue.url))
    died_at = utcnow().replace(year=2020)
    dead = insert_job(pg_db, status=JobStatus.PROCESSING, attempts=1, started_at=died_at, sent_at=died_at)
    for name in ("SWEEP_PENDING_AFTER_SECONDS", "SWEEP_LOST_AFTER_SECONDS"):
        monkeypatch.setenv(name, "0")
    worker.runtime.reset()
    runs = [sweeper.handler({}, None) for _ in range(5)]
    messages = drain(queue)
    assert bodies(messages) == sorted([*(str(j.id) for j in queued), str(lost.value.job_id), str(dead.id)])
    assert sum(r.get("resent_pending", 0) + r.get("resent_processing", 0) for r in runs) == 2
    record("messages after 5 sweeps", f"{len(messages)} for 5 jobs")
    worker.runtime.reset()


def test_a_due_job_is_sent_exactly_once_under_concurrent_releasers(
    pg_db: DB, queue: Queue, lambda_env: dict[str, str], sqs: StrictSqs, record: Any
) -> None:
    """A due job is sent exactly once under concurrent releasers: three sweepers releasing the same 200
    scheduled jobs at once send one message per job, each with the rest of its wait as its delay."""
    import threading
    from datetime import timedelta

    from db import JobRequest, publish_many
    from worker.runtime import Runtime

    run_at = utcnow() + timedelta(hours=2)
    jobs = publish_many(pg_db, [JobRequest("test-echo", {"n": n}, run_at=run_at) for n in range(200)], queue=queue)
    lock = threading.Lock()  # moto's SQS is not thread-safe; the database side, under test, runs concurrently

    class SerialSqs:
        def __getattr__(self, name: str) -> Any:
            def call(**kwargs: Any) -> Any:
                with lock:
                    return getattr(sqs, name)(**kwargs)

            return call

    sweepers = [Runtime.from_environ() for _ in range(3)]
    for one in sweepers:
        one.__dict__["sqs"] = SerialSqs()
    start = threading.Barrier(3)
    released: list[list[uuid.UUID]] = [[] for _ in sweepers]

    def sweep_once(slot: int) -> None:
        start.wait()
        released[slot] = sweeper.sweep(sweepers[slot], now=run_at).released

    threads = [threading.Thread(target=sweep_once, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = [json.loads(m["Body"])["jobId"] for m in drain(queue)]
    assert sorted(sent) == sorted(str(j.id) for j in jobs), "one message per job, none twice"
    record("messages for 200 due jobs, 3 concurrent sweeps", f"{len(sent)} ({[len(r) for r in released]} per sweep)")
    for one in sweepers:
        one.close()


def test_a_duplicate_schedule_fire_makes_one_job(
    pg_db: DB, queue: Queue, lambda_env: dict[str, str], sqs: StrictSqs, record: Any
) -> None:
    """A duplicate schedule fire makes one job: EventBridge Scheduler's event for the same fire time,
    delivered twice (a retry, a duplicate), publishes one job and one message; the next fire time, another."""
    from worker import scheduled

    worker.runtime.reset()
    fire = {"schedule": "nightly-report", "type": "test-echo", "payload": {"report": "daily"}}
    first = scheduled.handler({**fire, "scheduledTime": "2026-11-29T02:00:00Z"}, None)
    worker.runtime.current().__dict__["sqs"] = sqs  # the strict client, for the sends that follow
    again = scheduled.handler({**fire, "scheduledTime": "2026-11-29T02:00:00Z"}, None)
    following = scheduled.handler({**fire, "scheduledTime": "2026-11-30T02:00:00Z"}, None)
    assert first["job_id"] == again["job_id"] != following["job_id"]
    sent = sorted(json.loads(m["Body"])["jobId"] for m in drain(queue))
    assert sent == sorted([first["job_id"], following["job_id"]]), "one message per fire time"
    with pytest.raises(scheduled.ScheduleEventError, match="no scheduledTime"):
        scheduled.handler({"schedule": "nightly-report", "type": "test-echo"}, None)
    record("jobs for 3 fires of 2 fire times", 2)
    worker.runtime.reset()


# 4 ─ an unreachable database fails the invocation


def test_an_unreachable_database_fails_the_invocation_after_settling_the_batch(
    pg_url: str, pg_db: DB, queue: Queue, invoke: Invoke, calls: Calls, monkeypatch: pytest.MonkeyPatch, record: Any
) -> None:
    """When the database goes away mid-batch the invocation raises (a function error: the WorkerErrors
    alarm, and the event source backs off) once the finished records are deleted and the rest returned."""
    with PostgresProxy(pg_url) as proxy:
        monkeypatch.setenv("DATABASE_URL", proxy.url)
        calls.behaviour = lambda ctx: proxy.down() if ctx.payload["n"] == 1 else None
        jobs = publish_many(pg_db, [JobRequest("count-calls", {"n": n}) for n in range(3)], queue=queue)
        event = receive_event(queue)
        event["Records"].sort(key=lambda r: json.loads(r["body"])["payload"]["n"])
        with pytest.raises(BatchFailed, match="database unavailable") as caught:
            invoke(event)
    assert "\n" not in str(caught.value)
    first = get_job(pg_db, jobs[0].id)
    assert first is not None and first.status is JobStatus.COMPLETED
    assert in_queue(queue) == 2  # the finished one was deleted; the two others wait for redelivery
    record("records returned", 2)


def test_an_empty_database_secret_fails_the_invocation(
    queue: Queue, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, pg_db: DB
) -> None:
    """An empty database secret is an outage too: the invocation fails with one line naming the secret
    and deletes nothing."""
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secrets.create_secret(Name="jobs-db", SecretString=" ")["ARN"]
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("DATABASE_SECRET_ARN", arn)
    publish(pg_db, "test-echo", {}, queue=queue)
    with pytest.raises(BatchFailed, match=r"database secret .* is empty"):
        invoke(receive_event(queue))
    assert in_queue(queue) == 1


# 5 ─ idempotency keys mean one job


def test_an_idempotency_key_means_one_job(pg_db: DB, queue: Queue, invoke: Invoke, record: Any) -> None:
    """A key reused with another payload is refused, naming the key and the first job; a retry after
    PublishError sends the pending job's message, and the job runs once."""
    flaky = Queue(FlakySqs(queue.client, fail_sends=True), queue.url)
    with pytest.raises(PublishError) as failed:
        publish(pg_db, "test-echo", {"to": "a@example.com"}, queue=flaky, idempotency_key="welcome-42")
    with pytest.raises(IdempotencyConflict, match=f"'welcome-42' already names job {failed.value.job_id}"):
        publish(pg_db, "test-echo", {"to": "b@example.com"}, queue=queue, idempotency_key="welcome-42")
    job = publish(pg_db, "test-echo", {"to": "a@example.com"}, queue=queue, idempotency_key="welcome-42")
    assert job.id == failed.value.job_id
    deliver(invoke, queue)
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED and row.send_count == 1
    assert in_queue(queue) == 0
    record("messages sent", row.send_count)


# 6 ─ dead-letter copies always send


def test_dead_letter_copies_are_accepted_by_sqs_whatever_the_reason_holds(
    pg_db: DB, queue: Queue, dlq: Queue, invoke: Invoke, calls: Calls, sqs: StrictSqs, record: Any
) -> None:
    """A reason holding characters SQS refuses, a reason of 50,000 characters, a message with ten
    attributes and a message at the publisher's size limit are all dead-lettered: SQS accepts every copy."""
    nasty = "bad \x01\x02 \ud800 \uffff " + "x" * 50_000
    calls.behaviour = lambda ctx: (_ for _ in ()).throw(ValueError(nasty))
    publish(pg_db, "count-calls", {"n": 1}, queue=queue, max_attempts=1)
    reason = "bad \x01 " + "z" * 50_000  # PostgreSQL's jsonb takes \u0001 but no lone surrogate
    envelope = len(JobMessage(uuid.uuid4(), "test-echo", {"fail": reason, "blob": ""}).body()) + len(
        "jobTypeStringtest-echo"
    )
    blob = "y" * (1_048_576 - DLQ_ATTRIBUTE_RESERVE - envelope - len(reason) // 5)  # escapes: \u0001 is 6 bytes
    while True:  # grow to exactly the publisher's limit
        try:
            publish(pg_db, "test-echo", {"fail": reason, "blob": blob}, queue=queue, max_attempts=1)
            break
        except PayloadTooLarge as err:
            blob = blob[: len(blob) - (err.size - (err.limit - DLQ_ATTRIBUTE_RESERVE))]
    queue.client.send_message(
        QueueUrl=queue.url,
        MessageBody="not json",
        MessageAttributes={f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(10)},
    )
    drive(invoke, queue)
    dead = drain(dlq)
    assert len(dead) == 3
    assert sqs.refused == []
    reasons = [m["MessageAttributes"]["jobstack.error"]["StringValue"] for m in dead]
    assert all(len(r.encode()) <= MAX_REASON_BYTES for r in reasons)
    assert all(re.search("[\x00-\x08\ud800-\udfff\uffff]", r) is None for r in reasons)
    record("dead letters accepted", f"{len(dead)}/3")


# 7 ─ metrics stay within CloudWatch's limits


def test_metrics_of_a_large_batch_stay_within_emf_limits(
    pg_db: DB,
    queue: Queue,
    invoke: Invoke,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    record: Any,
) -> None:
    """A batch of 250 jobs prints EMF documents CloudWatch accepts: at most 100 values per metric per
    document, at most 30 dimensions; no duration is lost."""
    monkeypatch.setenv("JOBSTACK_EMF", "1")
    publish_many(pg_db, [JobRequest("test-echo", {"n": n}) for n in range(250)], queue=queue)
    records: list[dict[str, Any]] = []
    while len(records) < 250 and (got := receive_event(queue)["Records"]):
        records += got
    capsys.readouterr()
    invoke({"Records": records})
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"')]
    docs = [d for d in docs if "_aws" in d]
    assert all(len(v) <= MAX_VALUES_PER_METRIC for d in docs for v in d.values() if isinstance(v, list))
    assert all(
        len(dims) <= MAX_DIMENSIONS for d in docs for m in d["_aws"]["CloudWatchMetrics"] for dims in m["Dimensions"]
    )
    assert sum(len(d.get("JobDuration", [])) for d in docs) == 250
    assert sum(d.get("JobsSucceeded", 0) for d in docs) == 250
    record("EMF documents", len(docs))


# 8 ─ settings that can never run are refused


def test_a_handler_that_could_never_start_is_refused(invoke: Invoke, record: Any) -> None:
    """A handler whose min_time_left_seconds is at or above the function timeout would be deferred
    forever: the first invocation fails with one line naming it, and the docs' example fits."""

    class Slow(BaseModel):
        pass

    register_job_type("slow-report", Slow)
    registry.job("slow-report", min_time_left_seconds=60)(lambda ctx: None)
    try:
        with pytest.raises(ConfigError, match=r"handler for 'slow-report' .* function timeout is 60 s") as caught:
            invoke({"Records": []})
        assert "\n" not in str(caught.value)
    finally:
        registry.unregister("slow-report")
        unregister_job_type("slow-report")
    [example] = re.findall(r"min_time_left_seconds=(\d+)", JOB_TYPES_PAGE.read_text())
    assert int(example) < 60  # the docs' example runs with the default 60 s timeout
    record("refused", "min_time_left_seconds=60 with a 60 s timeout")


# 9 ─ a handler that deadlocks its own connection fails as itself


def test_a_handler_deadlocking_its_own_connection_fails_as_that_job(
    pg_db: DB, queue: Queue, invoke: Invoke, record: Any
) -> None:
    """A handler that uses ctx.db inside its own transaction gets a clear error within seconds, reported
    as that job's failure; the rest of the batch runs and the invocation does not fail."""

    class Nested(BaseModel):
        pass

    def nested(ctx: Any) -> None:
        with ctx.db.begin() as conn:
            conn.execute(text("SELECT 1"))
            get_job(ctx.db, ctx.job_id)  # a second connection while holding the only one

    register_job_type("nested-db", Nested, max_attempts=3)
    registry.job("nested-db")(nested)
    try:
        stuck = publish(pg_db, "nested-db", {}, queue=queue)
        fine = publish(pg_db, "test-echo", {}, queue=queue)
        started = time.monotonic()
        response = deliver(invoke, queue)
        elapsed = time.monotonic() - started
    finally:
        registry.unregister("nested-db")
        unregister_job_type("nested-db")
    assert len(response["batchItemFailures"]) == 1
    row = get_job(pg_db, stuck.id)
    assert row is not None and row.status is JobStatus.FAILED and row.attempts == 1
    assert row.error is not None and row.error.startswith("ConnectionBusy: no free database connection")
    assert "ctx.db inside its own open transaction" in row.error
    done = get_job(pg_db, fine.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    record("time to the error", f"{elapsed:.1f} s")
