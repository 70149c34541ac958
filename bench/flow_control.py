"""What flow control costs the database, against a plain claim in the same run (real PostgreSQL).

- A rate-limited claim: the token upsert riding on the claim, one statement (db/claiming/rate_limit_gate.py with
  db/rate_limits.py's `token_cte`), when a token is there.
- A throttled delivery: that statement finding no token, and the read of the bucket's level: all a delivery
  over the limit costs before its message goes back.
- A keyed claim (concurrency per key): BEGIN, the key, the advisory lock, the count, the claim, COMMIT.
- A tenant-limited claim (db/claiming/tenant_gate.py): BEGIN, the tenant, the advisory lock, the count, the
  claim, COMMIT; a job parked for its turn (the same, with the park's UPDATE instead of the claim); a turn
  released (db/tenant_turns.py: BEGIN, the lock, the count, the release, COMMIT), once per tenant per batch.

    .venv/bin/python -m bench.flow_control [--rounds 2000]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text

from bench.lambda_ids import lambda_invocation
from bench.report import write_section
from bench.statements import count_statements
from cli.scratch_database import scratch_database
from db import DB, ClaimPlan, create_db, plan_for, register_job_type
from db.claiming.tenant_gate import TenantLimit, release_turns
from db.rate_limits import Limiter

JOB_TYPE = "bench-flow"
STALE = timedelta(minutes=15)
LAMBDA = lambda_invocation()  # one invocation's claims, named as Lambda names them


class _Empty(BaseModel):
    n: int = 0


def _pending(db: DB, n: int, key: str | None, *, fresh: bool = True, tenant: str | None = None) -> list[Any]:
    with db.begin() as conn:
        if fresh:
            conn.execute(text("TRUNCATE background_jobs CASCADE"))
        return list(
            conn.execute(
                text(
                    "INSERT INTO background_jobs (id, type, payload, status, attempts, max_attempts, created_at,"
                    " updated_at, concurrency_key, tenant) SELECT gen_random_uuid(), :type, '{}'::jsonb, 'pending',"
                    " 0, 5, now(), now(), :key, :tenant FROM generate_series(1, :n) RETURNING id"
                ),
                {"type": JOB_TYPE, "n": n, "key": key, "tenant": tenant},
            ).scalars()
        )


def _release_after(db: DB, holder: Any, release: Callable[[], object]) -> object:
    """The slot's job ends (not counted: another worker's statement), then the release (counted)."""
    with db.autocommit() as conn:
        conn.execute(text("UPDATE background_jobs SET status = 'completed' WHERE id = :id"), {"id": holder})
    return release()


def _per_call_ms(calls: list[Callable[[], object]]) -> float:
    began = time.perf_counter()
    for call in calls:
        call()
    return (time.perf_counter() - began) * 1000 / len(calls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    register_job_type(JOB_TYPE, _Empty, max_attempts=5)
    n = args.rounds
    results: dict[str, list[float]] = {
        "plain claim": [], "rate-limited claim": [], "throttled": [], "keyed claim": [], "tenant-limited claim": [],
        "parked for its tenant's turn": [], "a turn released": [],
    }  # fmt: skip
    fast, slow = Limiter("fast", per_second=1e5, burst=10**6), Limiter("slow", per_second=1e-3, burst=1)

    # Each type's plan composed once, as a worker composes it at start-up.
    plans: dict[str | None, ClaimPlan] = {
        name: plan_for(JOB_TYPE, stale_after=STALE, limiter=limiter)
        for name, limiter in ((None, None), ("fast", fast), ("slow", slow))
    }
    keyed_plan = plan_for(JOB_TYPE, stale_after=STALE, concurrency_per_key=10**6)
    roomy = TenantLimit(JOB_TYPE, (JOB_TYPE,), running=10**6)
    tenant_plan = plan_for(JOB_TYPE, stale_after=STALE, tenant_limit=roomy)
    one_slot = TenantLimit(JOB_TYPE, (JOB_TYPE,), running=1)
    full_plan = plan_for(JOB_TYPE, stale_after=STALE, tenant_limit=one_slot)

    def release_one(tenant: str) -> object:
        return release_turns(db, one_slot, tenant, stale_after=STALE, silent_after=STALE)

    def claim(i: Any, limiter: Limiter | None = None) -> object:
        return plans[limiter.name if limiter else None].claim(db, i, invocation=LAMBDA)

    counts: dict[str, float] = {}
    with scratch_database() as url:
        db = create_db(url)
        for _ in range(5):  # interleaved rounds
            ids = _pending(db, n, None)
            results["plain claim"].append(_per_call_ms([functools.partial(claim, i) for i in ids]))
            ids = _pending(db, n, None)
            results["rate-limited claim"].append(_per_call_ms([functools.partial(claim, i, fast) for i in ids]))
            ids = _pending(db, n, None)
            claim(ids[0], slow)  # the bucket's one token: every claim after it is throttled
            results["throttled"].append(_per_call_ms([functools.partial(claim, i, slow) for i in ids[1:]]))
            keyed = _pending(db, n, "tenant")
            calls: list[Callable[[], object]] = [
                functools.partial(keyed_plan.claim, db, i, invocation=LAMBDA) for i in keyed
            ]
            results["keyed claim"].append(_per_call_ms(calls))
            tenants = _pending(db, n, None, tenant="acme")
            calls = [functools.partial(tenant_plan.claim, db, i, invocation=LAMBDA) for i in tenants]
            results["tenant-limited claim"].append(_per_call_ms(calls))
            busy = _pending(db, n + 1, None, tenant="busy")
            full_plan.claim(db, busy[0], invocation=LAMBDA)  # its one slot, taken: every claim after it parks
            calls = [functools.partial(full_plan.claim, db, i, invocation=LAMBDA) for i in busy[1:]]
            results["parked for its tenant's turn"].append(_per_call_ms(calls))
            with db.begin() as conn:  # the slot's job ended: each release below frees one parked job
                conn.execute(text("UPDATE background_jobs SET status = 'completed' WHERE id = :id"), {"id": busy[0]})
            calls = [functools.partial(release_one, "busy") for _ in busy[1:]]
            results["a turn released"].append(_per_call_ms(calls))
        plain_id, limited_id, throttled_id = _pending(db, 3, None)
        keyed_id = _pending(db, 1, "tenant", fresh=False)[0]
        tenant_id = _pending(db, 1, None, fresh=False, tenant="acme")[0]
        holder, waiter = _pending(db, 2, None, fresh=False, tenant="once")
        full_plan.claim(db, holder, invocation=LAMBDA)
        once: dict[str, Callable[[], object]] = {
            "plain claim": lambda: claim(plain_id),
            "rate-limited claim": lambda: claim(limited_id, fast),
            "throttled": lambda: claim(throttled_id, slow),
            "keyed claim": lambda: keyed_plan.claim(db, keyed_id, invocation=LAMBDA),
            "tenant-limited claim": lambda: tenant_plan.claim(db, tenant_id, invocation=LAMBDA),
            "parked for its tenant's turn": lambda: full_plan.claim(db, waiter, invocation=LAMBDA),
            "a turn released": lambda: _release_after(db, holder, functools.partial(release_one, "once")),
        }
        for name, call in once.items():
            with count_statements(db) as c:
                call()
            counts[name] = sum(v for k, v in c.items() if k != "(autocommit)")
        db.dispose()
    plain = statistics.median(results["plain claim"])
    lines = [
        f"Per call, median of 5 interleaved rounds of {n} (one connection, real PostgreSQL):",
        "",
        "| operation | statements (COMMIT counted; BEGIN is not) | ms | vs a plain claim |",
        "|---|---|---|---|",
    ]
    for name, values in results.items():
        ms = statistics.median(values)
        lines.append(f"| {name} | {counts[name]:.0f} | {ms:.3f} | {ms / plain:.2f}x |")
    lines += [
        "",
        "A rate-limited start takes its token in the claim's own statement (no extra round trip); a throttled",
        "delivery is the `throttled` row: that statement finding no token, and one read for the wait (its",
        "message goes back, unclaimed). A parked job costs its delivery once, and its release once more (a",
        "batch releases once per tenant whose jobs it ran); a returned one costs every redelivery until a slot",
        "is free.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("Flow control", "python -m bench.flow_control", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
