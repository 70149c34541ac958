"""Reading jobs by tenant (`tenant=`, db/preparation.py): how many each tenant has waiting, running and failed,
the tenants with the largest backlog first. One grouped read over the unfinished jobs that have a tenant (the
partial index on tenant and status, migration 0018)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from .engine import DB, statements
from .models import JobStatus, jobs_table

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


def tenant_counts(db: DB | Connection, *, limit: int = 20) -> list[TenantCounts]:
    """The `limit` tenants with the largest backlog (then the most running), with their counts."""
    query = (
        select(_t.c.tenant, _t.c.status, func.count())
        .where(_t.c.tenant.is_not(None), _t.c.status.in_([s.value for s in _READ]))
        .group_by(_t.c.tenant, _t.c.status)
    )
    found: dict[str, dict[str, int]] = {}
    with statements(db) as conn:
        for tenant, status, n in conn.execute(query):
            found.setdefault(tenant, {})[status] = int(n)
    rows = [
        TenantCounts(
            tenant,
            backlog=sum(counts.get(s.value, 0) for s in _BACKLOG),
            running=counts.get(JobStatus.PROCESSING.value, 0),
            failed=counts.get(JobStatus.FAILED.value, 0),
        )
        for tenant, counts in found.items()
    ]
    rows.sort(key=lambda r: (-r.backlog, -r.running, r.tenant))
    return rows[:limit]
