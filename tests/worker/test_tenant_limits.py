"""Limits per tenant in the claim (db/claiming/tenant_gate.py): at most N of a tenant's jobs running among the
types of its limit, a bucket of tokens per tenant, neither spending an attempt; how handlers declare them and
the one-line refusals of a declaration that could never work."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from db import DB, ClaimOutcome, ConfigError, JobStatus, Queue, get_job, plan_for, publish, utcnow
from db.claiming.tenant_gate import TenantLimit, release_turns
from db.rate_limits import Limiter
from tests.support.esm import FakeLambdaContext, acknowledge, receive_event
from tests.support.factories import insert_job
from tests.support.flow_control import Keyed
from tests.support.worker_support import job_type_for_test, make_config
from worker.batch import process_batch
from worker.record import SqsRecord
from worker.registry import check_rate_limits
from worker.runtime import Runtime

pytestmark = pytest.mark.integration
STALE = timedelta(minutes=5)


def _jobs(db: DB, job_type: str, tenants: list[str | None]) -> list[Any]:
    return [insert_job(db, type=job_type, tenant=tenant) for tenant in tenants]


def test_at_most_n_of_a_tenants_jobs_run_the_rest_wait_for_their_turn(any_db: DB) -> None:
    """The third job of a tenant limited to 2 waits in the database (no attempt spent, nothing due); a slot
    freed (here: both claims' invocations died) releases it, oldest first, and it is claimed then."""
    limit = TenantLimit("test-echo", ("test-echo",), running=2)
    plan = plan_for("test-echo", stale_after=STALE, tenant_limit=limit)
    acme = _jobs(any_db, "test-echo", ["acme", "acme", "acme"])
    others = _jobs(any_db, "test-echo", ["globex", None])
    claims = [plan.claim(any_db, job.id) for job in acme]
    assert [c.outcome for c in claims] == [ClaimOutcome.CLAIMED, ClaimOutcome.CLAIMED, ClaimOutcome.PARKED]
    assert claims[2].reason == "tenant 'acme' has 2 running, its limit 'test-echo' allows 2: it waits for its turn"
    parked = get_job(any_db, acme[2].id)
    assert parked is not None and parked.attempts == 0, "a job its tenant turns away spends no attempt"
    assert (parked.status.value, parked.wait_key, parked.run_at) == ("waiting", "jobstack:tenant:test-echo:acme", None)
    assert plan.claim(any_db, acme[2].id).outcome is not ClaimOutcome.CLAIMED, "a parked job is not claimed"
    assert [plan.claim(any_db, job.id).outcome for job in others] == [ClaimOutcome.CLAIMED] * 2
    assert release_turns(any_db, limit, "acme", stale_after=STALE, silent_after=STALE) == [], "no slot is free"
    later = utcnow() + STALE + timedelta(seconds=1)  # both acme claims' invocations died: their slots are free
    assert release_turns(any_db, limit, "acme", stale_after=STALE, silent_after=STALE, now=later) == [acme[2].id]
    released = get_job(any_db, acme[2].id)
    assert released is not None and (released.status.value, released.wait_key, released.sent_at) == (
        "pending",
        None,
        None,
    )
    assert plan.claim(any_db, acme[2].id, now=later).outcome is ClaimOutcome.CLAIMED


def test_a_group_counts_a_tenants_running_jobs_of_every_type_in_it(any_db: DB) -> None:
    shared = TenantLimit("imports", ("import.a", "import.b"), running=1)
    plan_a = plan_for("import.a", stale_after=STALE, tenant_limit=shared)
    plan_b = plan_for("import.b", stale_after=STALE, tenant_limit=shared)
    (a,) = _jobs(any_db, "import.a", ["acme"])
    (b,) = _jobs(any_db, "import.b", ["acme"])
    (c,) = _jobs(any_db, "test-echo", ["acme"])  # outside the group: not counted
    assert plan_for("test-echo", stale_after=STALE).claim(any_db, c.id).outcome is ClaimOutcome.CLAIMED
    assert plan_a.claim(any_db, a.id).outcome is ClaimOutcome.CLAIMED
    assert plan_b.claim(any_db, b.id).outcome is ClaimOutcome.PARKED


def test_each_tenant_has_a_bucket_of_its_own(any_db: DB) -> None:
    tenant = "t" * 128  # the longest tenant SQS takes: its bucket's name is 64 + 1 + 128 characters at most
    limit = TenantLimit("test-echo", ("test-echo",), limiter=Limiter("x" * 64, per_second=0.5, burst=2))
    plan = plan_for("test-echo", stale_after=STALE, tenant_limit=limit)
    busy = _jobs(any_db, "test-echo", [tenant] * 3)
    now = utcnow()
    outcomes = [plan.claim(any_db, job.id, now=now).outcome for job in busy]
    assert outcomes == [ClaimOutcome.CLAIMED, ClaimOutcome.CLAIMED, ClaimOutcome.RATE_LIMITED]
    refused = plan.claim(any_db, busy[2].id, now=now)
    assert refused.wait_seconds == pytest.approx(2.0, abs=0.01), "a token every 2 s at 0.5 per second"
    (quiet,) = _jobs(any_db, "test-echo", ["globex"])
    assert plan.claim(any_db, quiet.id, now=now).outcome is ClaimOutcome.CLAIMED, "another tenant's own bucket"
    with any_db.begin() as conn:
        names = set(conn.execute(text("SELECT name FROM rate_limiters")).scalars())
    assert names == {f"{'x' * 64}/{tenant}", f"{'x' * 64}/globex"}


def test_a_job_its_tenants_slots_turn_away_spends_no_token(any_db: DB) -> None:
    limit = TenantLimit("test-echo", ("test-echo",), running=1, limiter=Limiter("api", per_second=1, burst=5))
    plan = plan_for("test-echo", stale_after=STALE, tenant_limit=limit)
    jobs = _jobs(any_db, "test-echo", ["acme", "acme"])
    now = utcnow()
    assert [plan.claim(any_db, j.id, now=now).outcome for j in jobs] == [ClaimOutcome.CLAIMED, ClaimOutcome.PARKED]
    with any_db.begin() as conn:
        tokens = conn.execute(text("SELECT tokens FROM rate_limiters WHERE name = 'api/acme'")).scalar_one()
    assert tokens == pytest.approx(4.0, abs=0.01)


def test_a_parked_job_is_released_by_the_batch_that_frees_its_tenants_slot(
    pg_url: str, pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    """Two workers, through the batch entry: while worker 1 runs acme's first job, worker 2 receives acme's second
    (parked: its message deleted, nothing in flight) and globex's (run beside it, its handler told its tenant).
    Worker 1's batch ends, its slot is free: the parked job is released and its message sent, and it runs."""
    seen: list[tuple[int, str | None]] = []
    second: list[Any] = []
    other = Runtime(make_config(pg_url, queue, dlq), db=pg_db)

    def handler(ctx: Any) -> None:
        seen.append((ctx.payload["n"], ctx.tenant))
        if ctx.payload["n"] == 1:  # worker 2 polls while this job runs
            second.append(publish(pg_db, "tenant-job", {"n": 2}, queue=queue, tenant="acme"))
            publish(pg_db, "tenant-job", {"n": 3}, queue=queue, tenant="globex")
            event = receive_event(queue)
            response = process_batch(event, FakeLambdaContext(), other)
            acknowledge(queue, event, response)
            assert response["batchItemFailures"] == [], "the parked job's message is acknowledged"
            parked = get_job(pg_db, second[0].id)
            assert parked is not None and parked.status.value == "waiting" and parked.attempts == 0

    with job_type_for_test("tenant-job", Keyed, handler, max_attempts=3, tenant_concurrency=1):
        publish(pg_db, "tenant-job", {"n": 1}, queue=queue, tenant="acme")
        runtime = Runtime(make_config(pg_url, queue, dlq), db=pg_db)
        event = receive_event(queue)
        acknowledge(queue, event, process_batch(event, FakeLambdaContext(), runtime))
        assert seen == [(1, "acme"), (3, "globex")]
        released = get_job(pg_db, second[0].id)
        assert released is not None and released.status.value == "pending" and released.sent_at is not None
        event = receive_event(queue)
        assert len(event["Records"]) == 1
        acknowledge(queue, event, process_batch(event, FakeLambdaContext(), runtime))
    assert seen[-1] == (2, "acme")
    done = get_job(pg_db, second[0].id)
    assert done is not None and done.status.value == "completed" and done.attempts == 1
    runtime.close()
    other.close()


def test_the_sweeper_releases_a_turn_nobody_released(pg_url: str, pg_db: DB, queue: Queue, dlq: Queue) -> None:
    """A worker died between its job's end and the release: the sweeper finds the parked key, counts the
    tenant's free slots and releases, then sends. A FIFO pool's job is returned instead, never parked."""
    from worker.sweeper import sweep

    with job_type_for_test("tenant-job", Keyed, print, max_attempts=3, tenant_concurrency=1):
        runtime = Runtime(make_config(pg_url, queue, dlq), db=pg_db)
        plan = runtime.runnables["tenant-job"].plan  # type: ignore[union-attr]
        running = insert_job(pg_db, type="tenant-job", tenant="acme")
        waiting = publish(pg_db, "tenant-job", {}, queue=queue, tenant="acme")
        receive_event(queue)  # its first message, taken by the worker that parks it
        assert plan.claim(pg_db, running.id).outcome is ClaimOutcome.CLAIMED
        assert plan.claim(pg_db, waiting.id).outcome is ClaimOutcome.PARKED
        ordered = insert_job(pg_db, type="tenant-job", tenant="acme")
        with pg_db.begin() as conn:
            conn.execute(text("UPDATE background_jobs SET ordering_key = 'order-1' WHERE id = :id"), {"id": ordered.id})
        assert plan.claim(pg_db, ordered.id).outcome is ClaimOutcome.THROTTLED, "a FIFO job keeps its message"
        assert sweep(runtime).turns == [], "the slot is still taken"
        with pg_db.begin() as conn:  # the running job ended; its worker died before releasing
            conn.execute(text("UPDATE background_jobs SET status = 'completed' WHERE id = :id"), {"id": running.id})
        report = sweep(runtime)
        runtime.close()
    assert report.turns == [waiting.id] and report.summary()["turns_released"] == 1
    event = receive_event(queue)
    assert [r["body"] for r in event["Records"] if str(waiting.id) in r["body"]]
    assert get_job(pg_db, waiting.id).status.value == "pending"  # type: ignore[union-attr]


def test_a_signal_cannot_release_a_turn() -> None:
    from db.waits import check_key

    with pytest.raises(ValueError, match="a signal key may not start with 'jobstack:'"):
        check_key("jobstack:tenant:imports:acme")


def test_declarations_that_could_never_work_are_one_line() -> None:
    zero = pytest.raises(ConfigError, match=r"^@job\('tenant-job'\): tenant_concurrency must be at least 1, got 0$")
    with zero, job_type_for_test("tenant-job", Keyed, print, max_attempts=1, tenant_concurrency=0):
        pass
    alone = pytest.raises(ConfigError, match="tenant_group names who shares a tenant limit")
    with alone, job_type_for_test("tenant-job", Keyed, print, max_attempts=1, tenant_group="imports"):
        pass
    unknown = pytest.raises(ConfigError, match="tenant_rate_limit 'per-tenant', which the settings' rate_limits do not")
    with job_type_for_test("tenant-job", Keyed, print, max_attempts=1, tenant_rate_limit="per-tenant"), unknown:
        check_rate_limits(["api"])
    disagree = pytest.raises(ConfigError, match=r"'imports': 'import\.a' and 'import\.b' give it different")
    with (
        job_type_for_test("import.a", Keyed, print, max_attempts=1, tenant_concurrency=2, tenant_group="imports"),
        job_type_for_test("import.b", Keyed, print, max_attempts=1, tenant_concurrency=3, tenant_group="imports"),
        disagree,
    ):
        check_rate_limits([])


def test_the_sweeper_releases_the_turns_of_a_limit_no_handler_names_any_more(
    pg_url: str, pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    """A deploy dropped the limit its jobs were parked under: nothing would release them, so the sweeper does."""
    from worker.sweeper import sweep

    job = insert_job(pg_db, status=JobStatus.WAITING, tenant="acme")
    with pg_db.begin() as conn:
        conn.execute(text("UPDATE background_jobs SET wait_key = 'jobstack:tenant:gone:acme' WHERE id = :id"),
                     {"id": job.id})  # fmt: skip
    runtime = Runtime(make_config(pg_url, queue, dlq), db=pg_db)
    report = sweep(runtime)
    runtime.close()
    assert report.turns == [job.id]
    released = get_job(pg_db, job.id)
    assert released is not None and released.status is JobStatus.PENDING and released.sent_at is not None


def test_a_cancelled_parked_job_is_never_released_and_a_released_one_can_park_again(any_db: DB) -> None:
    """Crossings on the parked row: a cancel ends its turn for good; a released job whose tenant filled up again
    before its message arrived parks again (its new turn is the oldest still waiting, by created_at)."""
    from db import cancel_jobs

    limit = TenantLimit("test-echo", ("test-echo",), running=1)
    plan = plan_for("test-echo", stale_after=STALE, tenant_limit=limit)
    running, parked, cancelled = _jobs(any_db, "test-echo", ["acme", "acme", "acme"])
    outcomes = [plan.claim(any_db, j.id).outcome for j in (running, parked, cancelled)]
    assert outcomes == [ClaimOutcome.CLAIMED, ClaimOutcome.PARKED, ClaimOutcome.PARKED]
    assert cancel_jobs(any_db, [cancelled.id]).cancelled == [cancelled.id]
    later = utcnow() + STALE + timedelta(seconds=1)  # the running job's invocation died: one slot is free
    assert release_turns(any_db, limit, "acme", stale_after=STALE, silent_after=STALE, now=later) == [parked.id]
    assert get_job(any_db, cancelled.id).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    assert plan.claim(any_db, running.id, now=later).outcome is ClaimOutcome.CLAIMED  # reclaimed, slot taken
    assert plan.claim(any_db, parked.id, now=later).outcome is ClaimOutcome.PARKED, "its tenant is full again"
    assert release_turns(any_db, limit, "acme", stale_after=STALE, silent_after=STALE, now=later) == []


def test_a_job_waiting_for_a_signal_holds_no_slot_of_its_tenant(
    pg_url: str, pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    """Crossing with waits: a tenant-limited job that waits for a signal gives its slot back at once, so the
    tenant's next job runs in the same batch; the signal then resumes the first, which runs in its turn."""
    from datetime import timedelta as span

    from db import signal_now

    ran: list[str] = []

    def handler(ctx: Any) -> None:
        if ctx.payload["n"] == 1:
            ctx.wait_for_signal("approve:1", timeout=span(hours=1))
        ran.append(f"{ctx.payload['n']}:{ctx.tenant}")

    with job_type_for_test("tenant-job", Keyed, handler, max_attempts=3, tenant_concurrency=1):
        first = publish(pg_db, "tenant-job", {"n": 1}, queue=queue, tenant="acme")
        publish(pg_db, "tenant-job", {"n": 2}, queue=queue, tenant="acme")
        runtime = Runtime(make_config(pg_url, queue, dlq), db=pg_db)
        event = receive_event(queue)
        acknowledge(queue, event, process_batch(event, FakeLambdaContext(), runtime))
        assert ran == ["2:acme"], "the waiting job held no slot"
        assert get_job(pg_db, first.id).status is JobStatus.WAITING  # type: ignore[union-attr]
        assert len(signal_now(pg_db, "approve:1", {"ok": True}, queue=queue).released) == 1
        event = receive_event(queue)
        acknowledge(queue, event, process_batch(event, FakeLambdaContext(), runtime))
        runtime.close()
    assert ran == ["2:acme", "1:acme"]
    assert get_job(pg_db, first.id).status is JobStatus.COMPLETED  # type: ignore[union-attr]


@pytest.mark.parametrize("gate", ["tenant", "key"])
def test_concurrent_claims_on_sqlite_count_one_after_the_other(sqlite_db: DB, gate: str) -> None:
    """SQLite's driver begins a transaction only before a write, so a gate's count read first ran outside the
    claim's transaction, and two claims could both count a free slot (seen: two of a tenant's jobs at once
    through `jobstack local`). The gates take the write lock before counting: 8 threads claiming 8 jobs of one
    tenant (one key) with room for 1, released together, claim exactly 1, for 20 rounds."""
    import threading

    from sqlalchemy import update

    from db.models import jobs_table

    if gate == "tenant":
        plan = plan_for("test-echo", stale_after=STALE, tenant_limit=TenantLimit("t", ("test-echo",), running=1))
    else:
        plan = plan_for("test-echo", stale_after=STALE, concurrency_per_key=1)
    for _ in range(20):
        with sqlite_db.begin() as conn:
            conn.execute(text("DELETE FROM background_jobs"))
        jobs = _jobs(sqlite_db, "test-echo", ["acme"] * 8)
        with sqlite_db.begin() as conn:
            conn.execute(update(jobs_table).values(concurrency_key="k"))
        start, outcomes = threading.Barrier(8), list[ClaimOutcome]()

        def claim(job_id: Any, start: threading.Barrier = start, outcomes: list[ClaimOutcome] = outcomes) -> None:
            start.wait()
            outcomes.append(plan.claim(sqlite_db, job_id).outcome)

        threads = [threading.Thread(target=claim, args=(job.id,)) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes.count(ClaimOutcome.CLAIMED) == 1, outcomes


def test_async_handlers_of_one_tenant_in_one_batch_respect_its_limit(
    pg_url: str, pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    """Crossing with async handlers (claimed on the invocation's loop, run beside each other): of 3 async jobs
    of one tenant limited to 1, one runs and two park; the batch's end releases one in the slot it freed."""
    import asyncio

    ran: list[int] = []

    async def handler(ctx: Any) -> None:
        await asyncio.sleep(0.01)
        ran.append(ctx.payload["n"])

    with job_type_for_test("tenant-async", Keyed, handler, max_attempts=3, tenant_concurrency=1):
        jobs = [publish(pg_db, "tenant-async", {"n": n}, queue=queue, tenant="acme") for n in range(3)]
        runtime = Runtime(make_config(pg_url, queue, dlq), db=pg_db)
        event = receive_event(queue)
        response = process_batch(event, FakeLambdaContext(), runtime)
        acknowledge(queue, event, response)
        runtime.close()
    assert len(ran) == 1 and response["batchItemFailures"] == []
    statuses = sorted(get_job(pg_db, j.id).status.value for j in jobs)  # type: ignore[union-attr]
    assert statuses == ["completed", "pending", "waiting"], "one ran, one released by its slot, one still parked"


def test_a_standard_queues_group_is_a_tenant_not_an_order(pg_url: str, pg_db: DB, queue: Queue, dlq: Queue) -> None:
    """Found at the crossing of `tenant=` with the batch's FIFO rules: a standard queue's records carry the
    tenant as MessageGroupId, and the worker took it for a FIFO group, holding a tenant's later records back
    behind one that failed, and running its async jobs one after another. A FIFO queue is told by its name
    (".fifo", which SQS requires of one: CreateQueue's FifoQueue attribute), here through the record's
    eventSourceARN: one tenant's retry holds nothing back, and the record keeps the tenant for its copies."""
    calls: list[int] = []

    def handler(ctx: Any) -> None:
        calls.append(ctx.payload["n"])
        if ctx.payload["n"] == 0:
            raise RuntimeError("try again")

    with job_type_for_test("tenant-order", Keyed, handler, max_attempts=3):
        for n in range(3):
            publish(pg_db, "tenant-order", {"n": n}, queue=queue, tenant="acme")
        runtime = Runtime(make_config(pg_url, queue, dlq), db=pg_db)
        event = receive_event(queue)
        records = [SqsRecord.of(r) for r in event["Records"]]
        assert {(r.group, r.tenant) for r in records} == {(None, "acme")}
        response = process_batch(event, FakeLambdaContext(), runtime)
        runtime.close()
    assert sorted(calls) == [0, 1, 2], "the tenant's other jobs ran beside its failed one"
    assert len(response["batchItemFailures"]) == 1


def test_a_release_frees_as_many_parked_jobs_as_free_slots_oldest_first(any_db: DB) -> None:
    """Three parked behind one slot: the slot's release takes the oldest one, and only one (a locking subquery
    once released two of one on PostgreSQL)."""
    limit = TenantLimit("test-echo", ("test-echo",), running=1)
    plan = plan_for("test-echo", stale_after=STALE, tenant_limit=limit)
    running, *parked = _jobs(any_db, "test-echo", ["acme"] * 4)
    outcomes = [plan.claim(any_db, j.id).outcome for j in (running, *parked)]
    assert outcomes == [ClaimOutcome.CLAIMED] + [ClaimOutcome.PARKED] * 3
    later = utcnow() + STALE + timedelta(seconds=1)  # the running one's invocation died: one slot is free
    assert release_turns(any_db, limit, "acme", stale_after=STALE, silent_after=STALE, now=later) == [parked[0].id]
