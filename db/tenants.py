"""Reading jobs by tenant (`tenant=`, db/preparation.py): how many each tenant has waiting, running and failed,
the tenants with the largest backlog first, and how long their recent jobs waited in the queue.

Two bounded reads, whatever the table holds (the console's tenants page refreshes against millions of rows:
bench/tenants_page.py measures 10,000 tenants and 1,000,000 jobs):

- the counts: one grouped read over the unfinished jobs that have a tenant, an index-only scan of the partial
  index of unfinished jobs by tenant and status (migration 0019); finished jobs, however many, are not read,
  and only the top tenants' rows come back;
- the queue waits: the most recent `TIMING_SAMPLE` completions in a window (the status/updated_at index, as
  the per-type percentiles of db/readings.py), shared out by tenant; a tenant with no completion among them
  has no figure rather than a slow one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, func, select

from .clock import utcnow
from .engine import DB, statements
from .models import JobStatus, jobs_table
from .queue_wait import queue_wait
from .readings import percentile, timings_query

_t = jobs_table
#: What a tenant's backlog is: jobs not started yet (pending, scheduled, waiting), running, failed.
_BACKLOG = (JobStatus.PENDING, JobStatus.SCHEDULED, JobStatus.WAITING)
_READ = (*_BACKLOG, JobStatus.PROCESSING, JobStatus.FAILED)


@dataclass(frozen=True)
class TenantCounts:
    tenant: str
    backlog: int  # pending, scheduled or waiting: not started yet
    running: int
    failed: int


@dataclass(frozen=True)
class TenantRow(TenantCounts):
    """A tenant as the console's page shows it: its counts, and its recent first attempts' queue wait."""

    waits: int = 0  # recent completions the percentiles come from
    wait_p50: float | None = None  # seconds
    wait_p95: float | None = None


def tenant_counts(db: DB | Connection, *, limit: int = 20) -> list[TenantCounts]:
    """The `limit` tenants with the largest backlog (then the most running), with their counts: summed, sorted
    and cut by the database, so only `limit` rows come back whatever the number of tenants."""
    with statements(db) as conn:
        return [TenantCounts(t, int(b), int(r), int(f)) for t, b, r, f in conn.execute(counts_query(limit))]


def counts_query(limit: int) -> Select[Any]:
    backlog = func.count().filter(_t.c.status.in_([s.value for s in _BACKLOG])).label("backlog")
    running = func.count().filter(_t.c.status == JobStatus.PROCESSING.value).label("running")
    failed = func.count().filter(_t.c.status == JobStatus.FAILED.value).label("failed")
    return (
        select(_t.c.tenant, backlog, running, failed)
        .where(_t.c.tenant.is_not(None), _t.c.status.in_([s.value for s in _READ]))
        .group_by(_t.c.tenant)
        .order_by(backlog.desc(), running.desc(), _t.c.tenant)
        .limit(limit)
    )


def tenant_rows(
    db: DB | Connection, *, limit: int = 50, window: timedelta = timedelta(hours=1), now: datetime | None = None
) -> list[TenantRow]:
    """The console's tenants: `tenant_counts`, each with its queue wait p50/p95 over the window's most recent
    completions (db/queue_wait.py's rule: first attempts only)."""
    recent = timings_query((now or utcnow()) - window).add_columns(_t.c.tenant)  # the per-type percentiles' sample
    with statements(db) as conn:
        counts = tenant_counts(conn, limit=limit)
        shown = {c.tenant for c in counts}
        waits: dict[str, list[float]] = {}
        for row in conn.execute(recent):
            wait = queue_wait(row.created_at, row.run_at, row.started_at, row.attempts) if row.tenant in shown else None
            if wait is not None:
                waits.setdefault(row.tenant, []).append(wait.total_seconds())
    return [
        TenantRow(
            c.tenant,
            c.backlog,
            c.running,
            c.failed,
            len(waits.get(c.tenant, [])),
            percentile(waits.get(c.tenant), 50),
            percentile(waits.get(c.tenant), 95),
        )
        for c in counts
    ]
