"""Tenants under concurrency, through `jobstack local` (the real Lambda handler, 4 invocations at once).

`make reliability`, which writes the report's row, publishes 2,000 jobs of tenant A; `make test` publishes 200
(JOBSTACK_TENANT_BACKLOG, set in the Makefile), which prove the same rules in a tenth of the time: the quiet
tenants start after one pass over A's messages whatever their number (13% of A's 2,000 done then; 15-22% of
200 in three runs)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from sqlalchemy import func, select

from db import DB, JobRequest, Queue, publish_many
from db.models import jobs_table
from tests.support.esm import drain
from tests.support.flow_control import Keyed, TenantRuns
from tests.support.worker_support import job_type_for_test

BACKLOG = int(os.environ.get("JOBSTACK_TENANT_BACKLOG", "2000"))  # the Makefile sets it for `make test`
QUIET, QUIET_JOBS, LIMIT = ("B", "C", "D", "E"), 20, 2


@pytest.mark.usefixtures("moto_at_scale")
def test_quiet_tenants_start_before_a_noisy_tenants_backlog_is_half_done(
    pg_url: str, pg_db: DB, fast_queues: tuple[Queue, Queue], run_local: Any, record: Any
) -> None:
    """One tenant's backlog does not hold the others back: with `tenant_concurrency=2`, every job of tenants
    B-E, published after A's 2,000, starts before half of A's are done, and no tenant ever has more than 2
    running.

    4 invocations at once, each job 50 ms: the gate parks A's jobs past its 2 running (no attempt spent, their
    messages deleted) and releases them as A's slots free, so the workers reach the others' messages after one
    pass over A's. Nothing is dead-lettered; every job completes once. moto's quadratic retention check is
    replaced (`moto_at_scale`): at 2,000 messages it alone took 41 s per pass."""
    runs = TenantRuns(seconds=0.05)
    queue, dlq = fast_queues
    with job_type_for_test("tenant-import", Keyed, runs, max_attempts=3, tenant_concurrency=LIMIT):
        publish_many(pg_db, [JobRequest("tenant-import", {"n": n}, tenant="A") for n in range(BACKLOG)], queue=queue)
        quiet = [JobRequest("tenant-import", {"n": n}, tenant=t) for t in QUIET for n in range(QUIET_JOBS)]
        publish_many(pg_db, quiet, queue=queue)
        stats = run_local(fast_queues, pg_url, "--concurrency", "4")
    a_ends = runs.ends("A")
    last_quiet_start = runs.starts_of_others("A")[-1]
    a_done_then = sum(1 for end in a_ends if end <= last_quiet_start)
    assert len(a_ends) == BACKLOG and len(runs.starts_of_others("A")) == len(quiet), "each job ran once"
    assert a_done_then < BACKLOG / 2, f"{a_done_then} of A's {BACKLOG} were done when the last quiet job started"
    most = {tenant: runs.most_at_once(tenant) for tenant in ("A", *QUIET)}
    assert max(most.values()) <= LIMIT, most
    assert drain(dlq) == []
    with pg_db.begin() as conn:
        grouped = conn.execute(select(jobs_table.c.attempts, func.count()).group_by(jobs_table.c.attempts))
        attempts = {int(n): int(count) for n, count in grouped}
    assert attempts == {1: BACKLOG + len(quiet)}, "a job its tenant's limit turned away spends no attempt"
    record("tenant A's jobs", BACKLOG)
    record("A's jobs done when the last of B-E's 80 started", f"{a_done_then} ({a_done_then / BACKLOG:.0%})")
    record("most running at once per tenant", max(most.values()))
    record("A's backlog done after", f"{a_ends[-1] - min(s for _, s, _ in runs.runs):.0f} s")
    record("deliveries (each parked job's message comes back once, when released)", stats["records"])
