"""Durable steps (`ctx.step`) through the worker's batch entry, on PostgreSQL and SQLite with moto's SQS: a
completed step never runs again for its job (a retry, a slice), a transactional step's writes commit with
its journal row or not at all, changed steps are refused in one line, and a job longer than one invocation
continues from its next step in the next one, on the same attempt."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import text

from db import DB, JobStatus, Queue, create_db, get_job, publish, utcnow
from db.relay import prune_jobs
from db.steps import journal, record_step
from tests.support.esm import FakeLambdaContext, acknowledge, receive_event
from tests.support.worker_support import fifo_pair, job_type_for_test, make_config
from worker.batch import process_batch
from worker.contract import BATCHED, PER_JOB
from worker.outcomes import Outcome
from worker.registry import JobContext
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


class Empty(BaseModel):
    pass


def _runtime(db: DB, queue: Queue, dlq: Queue, **overrides: Any) -> Runtime:
    url = db.engine.url.render_as_string(hide_password=False)
    config = make_config(url, queue, dlq, backoff_base_seconds=0, **overrides)
    return Runtime(config, db=db, sqs=queue.client)


def _deliver(queue: Queue, runtime: Runtime, context: FakeLambdaContext | None = None) -> dict[str, Any]:
    event = receive_event(queue)
    assert event["Records"], "expected a message"
    response = process_batch(event, context or FakeLambdaContext(), runtime)
    acknowledge(queue, event, response)
    return response


@pytest.mark.parametrize("completion", [PER_JOB, BATCHED])
def test_a_job_failing_in_its_third_step_does_not_run_the_first_two_again(
    any_db: DB, queue: Queue, dlq: Queue, completion: str
) -> None:
    ran: list[str] = []

    def noted(name: str, result: object) -> Callable[[], object]:
        def step() -> object:
            ran.append(name)
            return result

        return step

    def handler(ctx: JobContext) -> object:
        charged = ctx.step("charge", noted("charge", {"charged": 5}))
        page = ctx.step("render", noted("render", ("page", 1)))

        def send() -> list[Any]:
            ran.append("send")
            if ctx.attempt == 1:
                raise ConnectionError("the mailer is down")
            return [charged["charged"], page]

        return ctx.step("send", send)

    runtime = _runtime(any_db, queue, dlq, completion=completion)
    with job_type_for_test("three-steps", Empty, handler, max_attempts=3):
        job = publish(any_db, "three-steps", {}, queue=queue)
        assert len(_deliver(queue, runtime)["batchItemFailures"]) == 1  # the retry
        failed = get_job(any_db, job.id)
        assert failed is not None and failed.status is JobStatus.FAILED and "mailer is down" in (failed.error or "")
        assert _deliver(queue, runtime) == {"batchItemFailures": []}

    assert ran == ["charge", "render", "send", "send"], "steps one and two ran once"
    done = get_job(any_db, job.id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.attempts == 2
    assert done.result == [5, ["page", 1]], "a replayed step returns its journaled (JSON) result"
    steps = journal(any_db, job.id)
    assert [(s.position, s.name, s.attempt) for s in steps] == [(0, "charge", 1), (1, "render", 1), (2, "send", 2)]


def test_changed_steps_are_refused_in_one_line_and_a_reused_name_too(pg_db: DB, queue: Queue, dlq: Queue) -> None:
    order = ["charge", "render"]

    def handler(ctx: JobContext) -> None:
        for name in order:
            ctx.step(name, lambda: None)
        raise RuntimeError("fails after its steps")

    runtime = _runtime(pg_db, queue, dlq)
    with job_type_for_test("reordered", Empty, handler, max_attempts=3):
        job = publish(pg_db, "reordered", {}, queue=queue)
        _deliver(queue, runtime)
        order.reverse()  # a deploy between the attempts changed the handler's order
        _deliver(queue, runtime)
        error = get_job(pg_db, job.id).error or ""  # type: ignore[union-attr]
        assert "\n" not in error and "step 1 is 'render' now, but this job's journal holds 'charge', 'render'" in error
        assert f"jobstack retry {job.id} --from-scratch" in error
        order[:] = ["same", "same"]
        other = publish(pg_db, "reordered", {}, queue=queue)
        _deliver(queue, runtime)
        assert "step 'same' was already run by this job" in (get_job(pg_db, other.id).error or "")  # type: ignore[union-attr]
    assert [s.name for s in journal(pg_db, job.id)] == ["charge", "render"], "nothing journaled over the old steps"


@pytest.fixture
def ledger(pg_db: DB) -> DB:
    with pg_db.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS ledger"))
        conn.execute(text("CREATE TABLE ledger (entry text NOT NULL)"))
    return pg_db


def _entries(db: DB) -> list[str]:
    with db.begin() as conn:
        return [row[0] for row in conn.execute(text("SELECT entry FROM ledger ORDER BY entry"))]


def test_a_transactional_steps_writes_commit_with_its_journal_row_once(ledger: DB, queue: Queue, dlq: Queue) -> None:
    def write(conn: Any) -> str:
        conn.execute(text("INSERT INTO ledger VALUES ('paid')"))
        return "receipt-1"

    def handler(ctx: JobContext) -> None:
        ctx.step("pay", write, transactional=True)
        if ctx.attempt == 1:
            raise RuntimeError("fails after the payment")

    runtime = _runtime(ledger, queue, dlq)
    with job_type_for_test("pay-once", Empty, handler, max_attempts=3):
        job = publish(ledger, "pay-once", {}, queue=queue)
        _deliver(queue, runtime)
        _deliver(queue, runtime)
    assert get_job(ledger, job.id).status is JobStatus.COMPLETED  # type: ignore[union-attr]
    assert _entries(ledger) == ["paid"], "written once, by the attempt that journaled it"


@pytest.mark.parametrize("how", ["taken over", "result too large"])
def test_a_transactional_step_whose_journal_write_fails_leaves_none_of_its_writes(
    ledger: DB, pg_url: str, queue: Queue, dlq: Queue, how: str
) -> None:
    other = create_db(pg_url)  # another invocation's connection

    def write(conn: Any) -> str:
        conn.execute(text("INSERT INTO ledger VALUES ('paid')"))
        if how == "taken over":  # another invocation takes the job over while the step runs
            with other.begin() as theirs:
                theirs.execute(text("UPDATE background_jobs SET attempts = attempts + 1"))
            return "receipt"
        return "x" * 70_000  # over RESULT_MAX_BYTES: refused before its journal row is written

    def handler(ctx: JobContext) -> None:
        ctx.step("pay", write, transactional=True)

    runtime = _runtime(ledger, queue, dlq)
    with job_type_for_test("pay-lost", Empty, handler, max_attempts=3):
        job = publish(ledger, "pay-lost", {}, queue=queue)
        event = receive_event(queue)
        decision_error = process_batch(event, FakeLambdaContext(), runtime)
    other.dispose()
    assert _entries(ledger) == [], "the step's writes rolled back with its journal row"
    assert journal(ledger, job.id) == []
    row = get_job(ledger, job.id)
    assert row is not None
    if how == "taken over":
        assert decision_error == {"batchItemFailures": []}  # a duplicate now: the other invocation's run stands
    else:
        assert "results are limited to" in (row.error or "") and row.status is JobStatus.FAILED


def test_a_job_longer_than_one_invocation_continues_from_its_next_step_on_the_same_attempt(
    any_db: DB, queue: Queue, dlq: Queue
) -> None:
    """Ten steps of 4 s under a 15 s deadline, at a twentieth of the scale: 0.2 s steps, a 0.75 s function."""
    ran: list[tuple[int, int]] = []
    invocations = 0

    def handler(ctx: JobContext) -> str:
        for n in range(10):
            ctx.step(f"page-{n}", _page(ran, n, invocations))
        return "done"

    runtime = _runtime(any_db, queue, dlq, min_time_left=timedelta(milliseconds=50))
    with job_type_for_test("long-report", Empty, handler, max_attempts=1):
        job = publish(any_db, "long-report", {}, queue=queue)
        while (row := get_job(any_db, job.id)) is not None and row.status is not JobStatus.COMPLETED:
            invocations += 1
            assert invocations <= 8, f"not finished after {invocations - 1} invocations: {row}"
            _deliver(queue, runtime, FakeLambdaContext(timeout_ms=750))
    assert [n for n, _ in ran] == list(range(10)), "each step once, in order"
    assert len({i for _, i in ran}) >= 3, "across several invocations"
    assert row is not None and row.attempts == 1 and row.result == "done", "slices spend no attempt (max is 1)"


def _page(ran: list[tuple[int, int]], n: int, invocation: int) -> Callable[[], None]:
    def render() -> None:
        time.sleep(0.2)
        ran.append((n, invocation))

    return render


def test_a_sliced_job_past_its_max_duration_fails_with_the_reason(pg_db: DB, queue: Queue, dlq: Queue) -> None:
    def handler(ctx: JobContext) -> None:
        ctx.step("first", lambda: None)
        ctx.step("slow", lambda: time.sleep(1.1))
        ctx.step("third", lambda: None)

    runtime = _runtime(pg_db, queue, dlq)
    with job_type_for_test("bounded", Empty, handler, max_attempts=1, max_duration_seconds=1):
        job = publish(pg_db, "bounded", {}, queue=queue)
        _deliver(queue, runtime)
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.FAILED
    assert "has run for longer than its max_duration (1 s) since its first step" in (row.error or "")
    assert [s.name for s in journal(pg_db, job.id)] == ["first", "slow"]


def test_steps_are_pruned_with_their_job(any_db: DB, queue: Queue) -> None:
    job = publish(any_db, "test-echo", {}, queue=queue)
    with any_db.begin() as conn:
        conn.execute(text("UPDATE background_jobs SET status = 'processing', attempts = 1"))
    assert record_step(any_db, job.id, attempt=1, position=0, name="a", result="1", started_at=utcnow())
    with any_db.begin() as conn:
        conn.execute(text("UPDATE background_jobs SET status = 'completed'"))
    assert prune_jobs(any_db, JobStatus.COMPLETED, utcnow() + timedelta(seconds=1)) == 1
    assert journal(any_db, job.id) == []
    with any_db.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM job_steps")).scalar() == 0


def test_a_step_outside_the_worker_just_runs(pg_db: DB) -> None:
    """A handler called directly (a unit test of its own) runs its steps, journaling nothing."""
    ctx = JobContext(
        job_id=uuid.uuid4(), type="t", payload={}, db=pg_db, log=None,  # type: ignore[arg-type]
        attempt=1, max_attempts=1, message_id="m", _remaining_ms=lambda: 60_000,
    )  # fmt: skip
    assert ctx.step("a", lambda: 41) == 41
    ctx.progress(0.5, "half")  # nowhere to store it: accepted
    with pytest.raises(ValueError, match="from 0 to 1"):
        ctx.progress(1.5)


def test_the_decision_of_a_lost_step_is_a_duplicate(
    pg_db: DB, queue: Queue, dlq: Queue, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = create_db(pg_url)

    def handler(ctx: JobContext) -> None:
        def taken_over() -> None:
            with other.begin() as theirs:
                theirs.execute(text("UPDATE background_jobs SET attempts = attempts + 1"))

        ctx.step("a", taken_over)

    seen: list[Outcome] = []
    monkeypatch.setattr("worker.tracing.log_outcome", lambda decision, _ms, _fields: seen.append(decision.outcome))
    with job_type_for_test("lost", Empty, handler, max_attempts=3):
        job = publish(pg_db, "lost", {}, queue=queue)
        process_batch(receive_event(queue), FakeLambdaContext(), _runtime(pg_db, queue, dlq))
    other.dispose()
    assert seen == [Outcome.DUPLICATE] and journal(pg_db, job.id) == []


def test_steps_in_a_transactional_handler_are_refused_in_one_line(pg_db: DB, queue: Queue, dlq: Queue) -> None:
    def handler(ctx: JobContext) -> None:
        ctx.step("a", lambda: None)

    with job_type_for_test("tx-steps", Empty, handler, max_attempts=1, transactional=True):
        job = publish(pg_db, "tx-steps", {}, queue=queue)
        _deliver(queue, _runtime(pg_db, queue, dlq))
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.FAILED
    error = row.error or ""
    assert "a transactional handler commits only when it returns" in error and "\n" not in error
    assert journal(pg_db, job.id) == []


def test_a_sliced_job_on_a_fifo_queue_keeps_its_group_waiting_until_it_completes(pg_db: DB, sqs: Any) -> None:
    """A slice returns its message unfinished. On a FIFO queue the next message of its group must not run in
    between: SQS delivers no more of a group while one of its messages is in flight (SQS Developer Guide, "FIFO
    queue delivery logic"), and the batch holds back the rest of a group after a record it returns."""
    queue, dlq = fifo_pair(sqs, "sliced")
    order: list[str] = []

    def long_one(ctx: JobContext) -> None:
        for n in range(5):
            ctx.step(f"part-{n}", _part(order, n))

    def next_one(_ctx: JobContext) -> None:
        order.append("next")

    runtime = _runtime(pg_db, queue, dlq, min_time_left=timedelta(milliseconds=50))
    with (
        job_type_for_test("sliced-long", Empty, long_one, max_attempts=1),
        job_type_for_test("sliced-next", Empty, next_one, max_attempts=1),
    ):
        first = publish(pg_db, "sliced-long", {}, queue=queue, ordering_key="customer-7")
        second = publish(pg_db, "sliced-next", {}, queue=queue, ordering_key="customer-7")
        invocations = 0
        while any(
            (row := get_job(pg_db, j.id)) is None or row.status is not JobStatus.COMPLETED for j in (first, second)
        ):
            invocations += 1
            assert invocations <= 10, f"not finished after {invocations - 1} invocations: {order}"
            _deliver(queue, runtime, FakeLambdaContext(timeout_ms=550))
    assert order == [*(f"long {n}" for n in range(5)), "next"], "the group's next job ran only after the sliced one"
    assert invocations >= 3, "the long job was sliced"
    assert (get_job(pg_db, first.id) or first).attempts == 1, "slices spend no attempt"


def _part(order: list[str], n: int) -> Callable[[], None]:
    def run() -> None:
        time.sleep(0.2)
        order.append(f"long {n}")

    return run
