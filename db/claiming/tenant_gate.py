"""Limits per tenant as a gate: at most `running` jobs of one tenant run at once, and each tenant's starts take
tokens of a bucket of its own, among the job types that share the limit (`TenantLimit.types`).

Why in the claim: one tenant's backlog of 200,000 imports must not hold every worker, and only the database
knows how many of a tenant's jobs run now. A job the gate turns away is not claimed and spends no attempt
(THROTTLED or RATE_LIMITED, as a concurrency key or a rate limit does); its message comes back later, and the
workers take the other tenants' messages meanwhile.

A job its tenant's running limit turns away is parked in the database for its turn (PARKED: db/tenant_turns.py)
and released when a slot frees; a FIFO pool's job, whose message holds its group's order, is returned instead
(THROTTLED).

A step in the claim's transaction, as the concurrency key's gate (db/claiming/concurrency_gate.py): a lock on
(limit, tenant) (db/locks.py: PostgreSQL's advisory lock, SQLite's write lock) makes two claims of one
tenant count one after the other across every worker. The count reads the running jobs of the tenant among the
limit's types (the partial index of unfinished jobs by tenant and status, migration 0019); a claim gone stale
holds no slot. The bucket is
a row of `rate_limiters` named `LIMIT/TENANT` (db/rate_limits.py), taken only once the count let the job
through: a job its tenant's slots turn away spends no token. A job without a tenant passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import Connection, bindparam, text

from .. import tenant_turns
from ..clock import utcnow
from ..engine import DB
from ..models import JobStatus, jobs_table
from ..rate_limits import Limiter, take_token
from ..states import STALE
from .gate import StepGate
from .outcome import Claim, ClaimOutcome
from .params import JOB_ID, SILENT_BEFORE, STALE_BEFORE, clock

_TENANT_OF = text("SELECT tenant, status, ordering_key FROM background_jobs WHERE id = :job_id").bindparams(JOB_ID)
_MAY_RUN = (JobStatus.PENDING.value, JobStatus.FAILED.value, JobStatus.PROCESSING.value)
_RUNNING_OF_TENANT = text(
    f"SELECT count(*) FROM background_jobs WHERE tenant = :tenant AND type IN :types "
    f"AND status = '{JobStatus.PROCESSING.value}' AND NOT ({STALE.template.format(a='')})"
).bindparams(bindparam("types", expanding=True, type_=jobs_table.c.type.type), STALE_BEFORE, SILENT_BEFORE)


@dataclass(frozen=True)
class TenantLimit:
    """One tenant limit as the worker composed it: its name (the handlers' `tenant_limit`, or the type's own
    name), the types that share it, and what it allows each tenant."""

    name: str
    types: tuple[str, ...]
    running: int | None = None  # at most this many of a tenant's jobs of `types` run at once
    limiter: Limiter | None = None  # each tenant's bucket: this limiter's rate and burst, a bucket per tenant

    def bucket(self, tenant: str) -> Limiter | None:
        """The tenant's own bucket (named `LIMITER/TENANT`: a limiter name is at most 64 characters, a tenant
        128, and the column 200)."""
        if self.limiter is None:
            return None
        return Limiter(f"{self.limiter.name}/{tenant}", self.limiter.per_second, self.limiter.burst)


@dataclass(frozen=True)
class TenantGate(StepGate):
    limit: TenantLimit

    @property
    def name(self) -> str:
        parts = [f"{self.limit.running} running"] if self.limit.running is not None else []
        if self.limit.limiter is not None:
            parts.append(f"rate limit {self.limit.limiter.name!r}")
        return f"tenant limit {self.limit.name!r} ({', '.join(parts)} per tenant)"

    @property
    def unbatchable(self) -> str | None:
        return "a tenant's running jobs are counted under a lock held by one claim at a time"

    def before(
        self, conn: Connection, job_id: UUID, job_type: str, now: datetime, clock: Mapping[str, datetime]
    ) -> Claim | None:
        row = conn.execute(_TENANT_OF, {"job_id": job_id}).first()
        if row is None or row.tenant is None or row.status not in _MAY_RUN:
            return None
        tenant: str = row.tenant
        limit = self.limit
        if limit.running is not None:
            tenant_turns.lock(conn, limit.name, tenant)
            running = _running(conn, limit, tenant, clock)
            if running >= limit.running:
                reason = f"tenant {tenant!r} has {running} running, its limit {limit.name!r} allows {limit.running}"
                if row.ordering_key is None and tenant_turns.park(conn, job_id, limit.name, tenant, now):
                    return Claim(ClaimOutcome.PARKED, reason=reason + ": it waits for its turn")
                return Claim(ClaimOutcome.THROTTLED, reason=reason)
        bucket = limit.bucket(tenant)
        if bucket is None:
            return None
        verdict = take_token(conn, bucket.name, per_second=bucket.per_second, burst=bucket.burst, now=now)
        if verdict.taken:
            return None
        return Claim(
            ClaimOutcome.RATE_LIMITED,
            wait_seconds=verdict.wait_seconds,
            jitter_seconds=bucket.burst / bucket.per_second,  # spread the turned-away over a burst's time
            reason=f"tenant {tenant!r}: no token in its own bucket ({bucket.name!r})",
        )


def _running(conn: Connection, limit: TenantLimit, tenant: str, clock: Mapping[str, datetime]) -> int:
    """The tenant's live running jobs among the limit's types (a claim gone stale holds no slot)."""
    params = {"tenant": tenant, "types": list(limit.types), "stale_before": clock["stale_before"],
              "silent_before": clock["silent_before"]}  # fmt: skip
    return int(conn.execute(_RUNNING_OF_TENANT, params).scalar_one())


def release_turns(
    db: DB, limit: TenantLimit, tenant: str, *, stale_after: timedelta, silent_after: timedelta,
    now: datetime | None = None,
) -> list[UUID]:  # fmt: skip
    """Release as many of the tenant's parked jobs as it has free slots (db/tenant_turns.py), in one transaction
    under the tenant's lock: pending and unsent, for the caller to send after this returns."""
    if limit.running is None:
        return []
    now = now or utcnow()
    with db.begin() as conn:
        tenant_turns.lock(conn, limit.name, tenant)
        running = _running(conn, limit, tenant, clock(now, stale_after=stale_after, silent_after=silent_after))
        return tenant_turns.release(conn, limit.name, tenant, limit.running - running, now)
