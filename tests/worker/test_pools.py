"""Worker pools through the real entry points: `publish` with a Router sends each job type to its pool's queue,
each pool's worker (the Lambda handler, configured as the stack configures it) runs its own queue, a FIFO
pool keeps order per ordering key across failures and retries while other keys go on, and the sweeper
applies each pool's own windows. Real PostgreSQL, moto queues (standard and FIFO) behind StrictSqs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from db import (
    DB,
    ConfigError,
    InvalidBatchItem,
    JobRequest,
    JobStatus,
    Queue,
    Router,
    Routes,
    UnroutableJob,
    get_job,
    publish,
    publish_many,
    register_job_type,
    utcnow,
)
from db.job_types import unregister_job_type
from tests.support.esm import FakeLambdaContext, acknowledge, drain, receive_event
from tests.support.factories import insert_job
from tests.support.worker_support import fifo_pair, make_config
from worker import handler as entry
from worker import registry, sweeper
from worker.registry import JobContext
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


class Entry(BaseModel):
    n: int = 0
    group: str | None = None


@pytest.fixture
def ledger(sqs: Any) -> tuple[Queue, Queue]:
    """The `ledger` pool's FIFO queue and FIFO DLQ, as stacks/worker_pool.py creates them."""
    return fifo_pair(sqs, "ledger")


Run = tuple[str, str | None, int, bool]  # (type, group, n, succeeded)


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    """Two job types, `mail-send` (default pool) and `ledger-post` (ledger pool); every run is recorded, and
    a run whose (group, n) is in `FAIL_ONCE` fails, once."""
    recorded: list[Run] = []
    for name in ("mail-send", "ledger-post"):
        register_job_type(name, Entry, max_attempts=3)

        def run(ctx: JobContext, name: str = name) -> None:
            key = (ctx.payload.get("group"), ctx.payload["n"])
            failing = key in FAIL_ONCE
            FAIL_ONCE.discard(key)
            recorded.append((name, *key, not failing))
            if failing:
                raise RuntimeError("declined")

        registry.job(name)(run)
    yield recorded
    FAIL_ONCE.clear()
    for name in ("mail-send", "ledger-post"):
        registry.unregister(name)
        unregister_job_type(name)


FAIL_ONCE: set[tuple[str | None, int]] = set()


def _router(sqs: Any, default: Queue, ledger: Queue) -> Router:
    return Router(
        sqs, Routes(queues={"default": default.url, "ledger": ledger.url}, types={"ledger-post": "ledger"}, stack="T")
    )


@pytest.fixture
def pool_env(monkeypatch: pytest.MonkeyPatch, pg_url: str) -> Iterator[Any]:
    """Point the Lambda entry point at one pool, as the stack's environment variables do."""

    def use(queue: Queue, dlq: Queue) -> None:
        monkeypatch.setenv("DATABASE_URL", pg_url)
        monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
        monkeypatch.setenv("QUEUE_URL", queue.url)
        monkeypatch.setenv("DLQ_URL", dlq.url)
        monkeypatch.setenv("JOB_BACKOFF_BASE_SECONDS", "1")
        monkeypatch.setenv("JOB_BACKOFF_MAX_SECONDS", "1")
        entry.reset_runtime()

    yield use
    entry.reset_runtime()


def _work(queue: Queue, until: Any, timeout: float = 15) -> None:
    """Play the event source mapping on `queue` until `until()` holds."""
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        event = receive_event(queue)
        if event["Records"]:
            acknowledge(queue, event, entry.handler(event, FakeLambdaContext()))
        else:
            time.sleep(0.2)


def test_each_type_goes_to_its_pools_queue_and_each_pools_worker_runs_it(
    pg_db: DB, sqs: Any, queue: Queue, dlq: Queue, ledger: tuple[Queue, Queue], runs: list[Any], pool_env: Any
) -> None:
    router = _router(sqs, queue, ledger[0])
    mail = publish(pg_db, "mail-send", {"n": 1}, queue=router)
    jobs = publish_many(
        pg_db,
        [JobRequest("ledger-post", {"n": 1}, ordering_key="acct-1"), JobRequest("mail-send", {"n": 2})],
        queue=router,
    )
    # Each pool's worker sees its own types only.
    pool_env(ledger[0], ledger[1])
    _work(ledger[0], lambda: get_job(pg_db, jobs[0].id).status is JobStatus.COMPLETED)  # type: ignore[union-attr]
    assert runs == [("ledger-post", None, 1, True)]
    pool_env(queue, dlq)
    _work(queue, lambda: len(runs) == 3)
    assert sorted(runs[1:]) == [("mail-send", None, 1, True), ("mail-send", None, 2, True)]
    assert all(get_job(pg_db, j.id).status is JobStatus.COMPLETED for j in (mail, *jobs))  # type: ignore[union-attr]


def test_a_fifo_pool_keeps_each_keys_order_across_failures_and_other_keys_go_on(
    pg_db: DB, sqs: Any, queue: Queue, ledger: tuple[Queue, Queue], runs: list[Any], pool_env: Any
) -> None:
    """SQS FIFO delivers a group's next message only after the one in flight is deleted or visible again
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-understanding-logic.html);
    the worker returns a failed record and the rest of its group in the batch, the rest of the batch runs."""
    router = _router(sqs, queue, ledger[0])
    a = [publish(pg_db, "ledger-post", {"n": n, "group": "a"}, queue=router, ordering_key="acct-a") for n in (1, 2, 3)]
    b = [publish(pg_db, "ledger-post", {"n": n, "group": "b"}, queue=router, ordering_key="acct-b") for n in (1, 2)]
    FAIL_ONCE.add(("a", 2))
    pool_env(*ledger)
    first = receive_event(ledger[0])
    acknowledge(ledger[0], first, entry.handler(first, FakeLambdaContext()))
    assert all(get_job(pg_db, j.id).status is JobStatus.COMPLETED for j in b), "acct-b was not held by acct-a"  # type: ignore[union-attr]
    assert get_job(pg_db, a[2].id).status is JobStatus.PENDING, "acct-a's third waits for its second"  # type: ignore[union-attr]
    _work(ledger[0], lambda: get_job(pg_db, a[2].id).status is JobStatus.COMPLETED)  # type: ignore[union-attr]
    in_a = [(n, ok) for _, group, n, ok in runs if group == "a"]
    assert in_a == [(1, True), (2, False), (2, True), (3, True)], "the retry came back first; order held"
    assert get_job(pg_db, a[1].id).attempts == 2  # type: ignore[union-attr]


def test_an_unroutable_type_is_refused_before_anything_is_written(pg_db: DB, sqs: Any, queue: Queue) -> None:
    router = Router(sqs, Routes(queues={"default": queue.url}, types={"test-echo": "video"}, stack="JobsStack-dev"))
    with pytest.raises(UnroutableJob, match=r"job type 'test-echo' runs in pool 'video', which JobsStack-dev's routes"):
        publish(pg_db, "test-echo", {}, queue=router)
    with pytest.raises(InvalidBatchItem, match="item 0: job type 'test-echo' runs in pool 'video'"):
        publish_many(pg_db, [JobRequest("test-echo", {})], queue=router)
    assert drain(queue) == []
    with pg_db.begin() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM background_jobs").scalar_one() == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "JOBSTACK_ROUTES is not set: export the line `jobstack routes --env ENV` prints"),
        ("{nope", "JOBSTACK_ROUTES is not JSON"),
        ('{"queues": {"default": "not-a-url"}}', "queues must map each pool's name to its queue URL"),
        ('{"queues": {"default": "https://q"}, "types": {"x": "video"}}', "types name pool 'video'"),
    ],
)
def test_a_bad_routes_variable_is_one_line(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Router.from_env({"JOBSTACK_ROUTES": value}, client=object())
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_fifo_pool_refuses_a_job_without_an_ordering_key_and_a_delay(
    pg_db: DB, sqs: Any, queue: Queue, ledger: tuple[Queue, Queue], runs: list[Any]
) -> None:
    router = _router(sqs, queue, ledger[0])
    with pytest.raises(ValueError, match="'ledger-post' runs on a FIFO queue, which needs ordering_key"):
        publish(pg_db, "ledger-post", {"n": 1}, queue=router)
    with pytest.raises(ValueError, match="not supported per message on a FIFO queue"):
        publish(pg_db, "ledger-post", {"n": 1}, queue=router, ordering_key="a", delay_seconds=10)
    with pytest.raises(ValueError, match="run_at in the future is not supported on a FIFO queue"):
        publish(pg_db, "ledger-post", {"n": 1}, queue=router, ordering_key="a", delay=timedelta(hours=1))
    publish(pg_db, "mail-send", {"n": 1}, queue=router, delay=timedelta(minutes=5))  # the standard pool: fine
    assert drain(ledger[0]) == []


def test_the_sweeper_applies_each_pools_own_windows_and_resends_to_its_queue(
    pg_url: str, pg_db: DB, sqs: Any, queue: Queue, dlq: Queue, ledger: tuple[Queue, Queue], runs: list[Any]
) -> None:
    """A 60 s pool's dead invocation is settled after its short window; a 900 s pool's job, started as long
    ago, may still be running and is left alone."""
    routes = _router(sqs, queue, ledger[0]).routes
    config = make_config(
        pg_url,
        queue,
        dlq,
        routes=routes,
        pool_windows={"default": (120, 600, 10**6), "ledger": (960, 2400, 10**6)},
    )
    runtime = Runtime(config, db=pg_db, sqs=sqs)
    ten_minutes_ago = utcnow() - timedelta(minutes=11)
    lost_mail = insert_job(pg_db, type="mail-send", status=JobStatus.PROCESSING, attempts=1, started_at=ten_minutes_ago)
    dead_mail = insert_job(
        pg_db, type="mail-send", status=JobStatus.PROCESSING, attempts=5, max_attempts=5, started_at=ten_minutes_ago
    )
    running_ledger = insert_job(
        pg_db, type="ledger-post", status=JobStatus.PROCESSING, attempts=1, started_at=ten_minutes_ago
    )
    last_ledger = insert_job(
        pg_db, type="ledger-post", status=JobStatus.PROCESSING, attempts=5, max_attempts=5, started_at=ten_minutes_ago
    )
    report = sweeper.sweep(runtime)
    assert report.resent == {"processing": [lost_mail.id]}
    assert report.abandoned == [dead_mail.id]
    assert [json.loads(m["Body"])["jobId"] for m in drain(queue)] == [str(lost_mail.id)]
    assert drain(ledger[0]) == []
    for job in (running_ledger, last_ledger):
        assert get_job(pg_db, job.id).status is JobStatus.PROCESSING  # type: ignore[union-attr]
    # Past the ledger pool's windows its two are settled too, its lost job sent to the FIFO queue.
    later = sweeper.sweep(runtime, now=utcnow() + timedelta(minutes=40))
    assert running_ledger.id in later.resent["processing"] and last_ledger.id in later.abandoned
    assert str(running_ledger.id) in [json.loads(m["Body"])["jobId"] for m in drain(ledger[0])]
