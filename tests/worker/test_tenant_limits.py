"""Limits per tenant in the claim (db/claiming/tenant_gate.py): at most N of a tenant's jobs running among the
types of its limit, a bucket of tokens per tenant, neither spending an attempt; how handlers declare them and
the one-line refusals of a declaration that could never work."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from db import DB, ClaimOutcome, ConfigError, Queue, get_job, plan_for, publish, utcnow
from db.claiming.tenant_gate import TenantLimit
from db.rate_limits import Limiter
from tests.support.esm import FakeLambdaContext, acknowledge, receive_event
from tests.support.factories import insert_job
from tests.support.flow_control import Keyed
from tests.support.worker_support import job_type_for_test, make_config
from worker.batch import process_batch
from worker.registry import check_rate_limits
from worker.runtime import Runtime

pytestmark = pytest.mark.integration
STALE = timedelta(minutes=5)


def _jobs(db: DB, job_type: str, tenants: list[str | None]) -> list[Any]:
    return [insert_job(db, type=job_type, tenant=tenant) for tenant in tenants]


def test_at_most_n_of_a_tenants_jobs_run_and_a_stale_claim_frees_a_slot(any_db: DB) -> None:
    plan = plan_for("test-echo", stale_after=STALE, tenant_limit=TenantLimit("test-echo", ("test-echo",), running=2))
    acme = _jobs(any_db, "test-echo", ["acme", "acme", "acme"])
    others = _jobs(any_db, "test-echo", ["globex", None])
    claims = [plan.claim(any_db, job.id) for job in acme]
    assert [c.outcome for c in claims] == [ClaimOutcome.CLAIMED, ClaimOutcome.CLAIMED, ClaimOutcome.THROTTLED]
    assert claims[2].reason == "tenant 'acme' has 2 running, its limit 'test-echo' allows 2"
    stored = get_job(any_db, acme[2].id)
    assert stored is not None and stored.attempts == 0, "a job its tenant turns away spends no attempt"
    assert [plan.claim(any_db, job.id).outcome for job in others] == [ClaimOutcome.CLAIMED] * 2
    later = utcnow() + STALE + timedelta(seconds=1)  # both acme claims' invocations died: their slots are free
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
    assert plan_b.claim(any_db, b.id).outcome is ClaimOutcome.THROTTLED


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
    assert [plan.claim(any_db, j.id, now=now).outcome for j in jobs] == [ClaimOutcome.CLAIMED, ClaimOutcome.THROTTLED]
    with any_db.begin() as conn:
        tokens = conn.execute(text("SELECT tokens FROM rate_limiters WHERE name = 'api/acme'")).scalar_one()
    assert tokens == pytest.approx(4.0, abs=0.01)


def test_the_worker_composes_a_handlers_tenant_limit_and_returns_what_it_turns_away(
    pg_url: str, pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    """Through the batch entry: the second job of a tenant whose one slot is taken comes back unclaimed
    (THROTTLED, its message's visibility set), the other tenant's runs beside it."""
    seen: list[int] = []

    def hold(ctx: Any) -> None:
        seen.append(ctx.payload["n"])

    with job_type_for_test("tenant-job", Keyed, hold, max_attempts=3, tenant_concurrency=1):
        first = publish(pg_db, "tenant-job", {"n": 1}, queue=queue, tenant="acme")
        with pg_db.begin() as conn:  # acme's first job is running (another invocation holds it)
            running = "status = 'processing', started_at = :now, attempts = 1"
            params = {"now": utcnow(), "id": first.id}
            conn.execute(text(f"UPDATE background_jobs SET {running} WHERE id = :id"), params)
        receive_event(queue)  # that invocation's message, held
        second = publish(pg_db, "tenant-job", {"n": 2}, queue=queue, tenant="acme")
        third = publish(pg_db, "tenant-job", {"n": 3}, queue=queue, tenant="globex")
        runtime = Runtime(make_config(pg_url, queue, dlq), db=pg_db)
        event = receive_event(queue, max_messages=10)
        response = process_batch(event, FakeLambdaContext(), runtime)
        acknowledge(queue, event, response)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    records = {r["messageId"]: r for r in event["Records"]}
    returned = [r for mid, r in records.items() if mid in failed]
    assert [r["body"] for r in returned] and str(second.id) in returned[0]["body"]
    assert seen == [3]
    job = get_job(pg_db, second.id)
    assert job is not None and job.attempts == 0 and job.status.value == "pending"
    assert get_job(pg_db, third.id).status.value == "completed"  # type: ignore[union-attr]


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
