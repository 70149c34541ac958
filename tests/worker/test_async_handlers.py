"""`async def` handlers (worker/processing.py: runs_together) through the worker's batch entry: on a standard
async jobs run together on one event loop, in both completion modes and on both databases; on a FIFO pool
they run one after another, in order; a failure, a snooze and the time left are the sync handlers' rules.
Concurrency is proved by the handlers themselves (how many ran at once); times are only compared within one
run (the same batch, sync against async), never against a constant."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from pydantic import BaseModel

from db import DB, ConfigError, JobRequest, JobStatus, Queue, get_job, publish, publish_group
from db.attempts import history
from db.job_types import register_job_type, unregister_job_type
from tests.support.esm import FakeLambdaContext, acknowledge, receive_event
from tests.support.worker_support import fifo_pair, job_type_for_test, make_config
from worker import registry
from worker.batch import process_batch
from worker.contract import BATCHED, PER_JOB
from worker.exceptions import Snooze
from worker.registry import JobContext
from worker.runtime import Runtime

pytestmark = pytest.mark.integration
WAIT = 0.1  # each job's await (or sleep), seconds
N = 10  # a batch (SQS's largest receive)


class Empty(BaseModel):
    pass


class Numbered(BaseModel):
    n: int = 0


def _runtime(db: DB, queue: Queue, dlq: Queue, **overrides: Any) -> Runtime:
    url = db.engine.url.render_as_string(hide_password=False)
    config = make_config(url, queue, dlq, backoff_base_seconds=0, backoff_max_seconds=0, **overrides)
    return Runtime(config, db=db, sqs=queue.client)


def _one_batch(queue: Queue, runtime: Runtime, context: FakeLambdaContext | None = None) -> float:
    """One invocation with what the queue holds (up to 10 records): its wall time."""
    event = receive_event(queue)
    started = time.perf_counter()
    response = process_batch(event, context or FakeLambdaContext(), runtime)
    took = time.perf_counter() - started
    acknowledge(queue, event, response)
    return took


@pytest.mark.parametrize("completion", [PER_JOB, BATCHED])
def test_a_batch_of_async_jobs_runs_together_and_each_completes_once(
    any_db: DB, queue: Queue, dlq: Queue, completion: str
) -> None:
    running, most = 0, 0

    async def waits(ctx: JobContext) -> dict[str, int]:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(WAIT)
        running -= 1
        return {"n": ctx.payload["n"]}

    def sleeps(_ctx: JobContext) -> None:
        time.sleep(WAIT)

    runtime = _runtime(any_db, queue, dlq, completion=completion)
    with (
        job_type_for_test("async-waits", Numbered, waits, max_attempts=3),
        job_type_for_test("sync-sleeps", Empty, sleeps, max_attempts=3),
    ):
        sync_jobs = [publish(any_db, "sync-sleeps", {}, queue=queue) for _ in range(N)]
        one_after_another = _one_batch(queue, runtime)
        async_jobs = [publish(any_db, "async-waits", {"n": n}, queue=queue) for n in range(N)]
        together = _one_batch(queue, runtime)
    assert most == N, f"at most {most} of {N} async jobs ran at once"  # the proof: every wait overlapped
    assert together < one_after_another, (together, one_after_another)  # and it shows, even on a loaded machine
    for n, job in enumerate(async_jobs):
        row = get_job(any_db, job.id)
        assert row is not None and row.status is JobStatus.COMPLETED and row.attempts == 1
        assert row.result == {"n": n}
    assert all((get_job(any_db, j.id) or j).status is JobStatus.COMPLETED for j in sync_jobs)


def test_async_jobs_on_a_fifo_pool_run_one_after_another_in_order(pg_db: DB, sqs: Any) -> None:
    """SQS hands a FIFO group's messages in order (SQS Developer Guide, "FIFO queue delivery logic"); running
    them together would let a later one finish, or fail, first."""
    queue, dlq = fifo_pair(sqs, "async-fifo")
    spans: list[tuple[int, float, float]] = []

    async def waits(ctx: JobContext) -> None:
        started = time.perf_counter()
        await asyncio.sleep(WAIT / 2)
        spans.append((ctx.payload["n"], started, time.perf_counter()))

    runtime = _runtime(pg_db, queue, dlq)
    with job_type_for_test("async-fifo", Numbered, waits, max_attempts=1):
        for n in range(5):
            publish(pg_db, "async-fifo", {"n": n}, queue=queue, ordering_key="customer-7")
        _one_batch(queue, runtime)
    assert [n for n, _, _ in spans] == [0, 1, 2, 3, 4]
    assert all(later[1] >= earlier[2] for earlier, later in itertools.pairwise(spans)), "no overlap"


def test_a_failure_and_a_snooze_of_async_handlers_follow_the_sync_rules(any_db: DB, queue: Queue, dlq: Queue) -> None:
    async def fails(_ctx: JobContext) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("upstream said 503")

    async def snoozes(_ctx: JobContext) -> None:
        await asyncio.sleep(0)
        raise Snooze(60)

    runtime = _runtime(any_db, queue, dlq)
    with (
        job_type_for_test("async-fails", Empty, fails, max_attempts=3),
        job_type_for_test("async-snoozes", Empty, snoozes, max_attempts=3),
    ):
        failing = publish(any_db, "async-fails", {}, queue=queue)
        snoozing = publish(any_db, "async-snoozes", {}, queue=queue)
        _one_batch(queue, runtime)
    failed = get_job(any_db, failing.id)
    assert failed is not None and failed.status is JobStatus.FAILED and failed.attempts == 1
    assert "RuntimeError: upstream said 503" in (failed.error or "")
    assert [a.outcome for a in history(any_db, failed)] == ["failed"]
    snoozed = get_job(any_db, snoozing.id)
    assert snoozed is not None and snoozed.status is JobStatus.PENDING and snoozed.attempts == 0, "no attempt spent"


def test_an_async_job_with_too_little_time_left_is_returned_unclaimed(pg_db: DB, queue: Queue, dlq: Queue) -> None:
    ran: list[str] = []

    async def waits(_ctx: JobContext) -> None:
        ran.append("ran")

    runtime = _runtime(pg_db, queue, dlq)
    with job_type_for_test("async-late", Empty, waits, max_attempts=1):
        job = publish(pg_db, "async-late", {}, queue=queue)
        _one_batch(queue, runtime, FakeLambdaContext(timeout_ms=10))
    row = get_job(pg_db, job.id)
    assert ran == [] and row is not None and row.status is JobStatus.PENDING and row.attempts == 0


def test_an_async_transactional_handler_is_refused_in_one_line() -> None:
    async def writes(_ctx: JobContext) -> None:
        await asyncio.sleep(0)

    register_job_type("async-transactional", Empty, max_attempts=1)
    try:
        with pytest.raises(ConfigError) as refused:
            registry.job("async-transactional", transactional=True)(writes)
    finally:
        registry.unregister("async-transactional")
        unregister_job_type("async-transactional")
    assert str(refused.value) == (
        "@job('async-transactional'): an async def handler cannot be transactional (ctx.conn is a sync "
        "connection, and would hold the event loop): make it a sync def, or drop transactional=True"
    )


@pytest.mark.parametrize("completion", [PER_JOB, BATCHED])
def test_a_group_of_async_jobs_completed_together_releases_its_callback_once(
    any_db: DB, queue: Queue, dlq: Queue, completion: str
) -> None:
    """The crossing with workflows: the group's members finish in one phase, in any order; the one whose
    completion finishes the group releases the callback, exactly once."""
    called: list[str] = []

    async def member(_ctx: JobContext) -> None:
        await asyncio.sleep(WAIT)

    def callback(_ctx: JobContext) -> None:
        called.append("then")

    runtime = _runtime(any_db, queue, dlq, completion=completion)
    with (
        job_type_for_test("async-member", Numbered, member, max_attempts=1),
        job_type_for_test("group-then", Empty, callback, max_attempts=1),
    ):
        group = publish_group(
            any_db,
            [JobRequest("async-member", {"n": n}) for n in range(5)],
            queue=queue,
            then=JobRequest("group-then", {}),
        )
        _one_batch(queue, runtime)  # the five members, together
        _one_batch(queue, runtime)  # the callback its last completion released
    assert called == ["then"]
    assert all((get_job(any_db, j.id) or j).status is JobStatus.COMPLETED for j in group.jobs)


def test_a_concurrency_key_holds_async_jobs_run_together(pg_db: DB, queue: Queue, dlq: Queue) -> None:
    """The crossing with a claim gate: six async jobs of one key in one batch, at most two running per key.
    The four the gate turns away are returned unrun with no attempt spent, not run beside the two."""
    running, most = 0, 0

    async def keyed(_ctx: JobContext) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(WAIT)
        running -= 1

    runtime = _runtime(pg_db, queue, dlq)
    with job_type_for_test("async-keyed", Numbered, keyed, max_attempts=1, concurrency_per_key=2):
        jobs = [publish(pg_db, "async-keyed", {"n": n}, queue=queue, concurrency_key="tenant-42") for n in range(6)]
        _one_batch(queue, runtime)
    rows = [get_job(pg_db, j.id) for j in jobs]
    assert most <= 2, f"{most} jobs of one key ran at once, over its limit of 2"
    done = [r for r in rows if r is not None and r.status is JobStatus.COMPLETED]
    waiting = [r for r in rows if r is not None and r.status is JobStatus.PENDING]
    assert len(done) == 2 and len(waiting) == 4 and all(r.attempts == 0 for r in waiting)


def test_an_async_jobs_steps_are_journaled_and_not_run_again_on_retry(any_db: DB, queue: Queue, dlq: Queue) -> None:
    """The crossing with durable steps: an async handler's `ctx.step` (a sync call, run between its awaits)
    journals as a sync handler's does; the retry after a failure in the third step runs only that one."""
    ran: list[str] = []
    failed_once: list[bool] = []

    def noted(name: str) -> Any:
        def step() -> str:
            ran.append(name)
            if name == "third" and not failed_once:
                failed_once.append(True)
                raise RuntimeError("the third step's API said 503")
            return name

        return step

    async def stepped(ctx: JobContext) -> list[str]:
        done = []
        for name in ("first", "second", "third"):
            await asyncio.sleep(0)
            done.append(ctx.step(name, noted(name)))
        return done

    runtime = _runtime(any_db, queue, dlq)
    with job_type_for_test("async-stepped", Empty, stepped, max_attempts=3):
        job = publish(any_db, "async-stepped", {}, queue=queue)
        _one_batch(queue, runtime)
        _one_batch(queue, runtime)  # the retry, at once (no backoff here)
    row = get_job(any_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED and row.attempts == 2
    assert ran == ["first", "second", "third", "third"], "the journaled steps did not run again"
    assert row.result == ["first", "second", "third"]
