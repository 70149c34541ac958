"""A batch's claims in one statement (a pool's `completion: batched`, PostgreSQL), and handing back the ones
the batch did not use. Only types whose plan batches (no gate that must decide job by job) are claimed so;
the rest, and every claim this one missed, are claimed one by one by their plan, which also says why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import update

from ..clock import utcnow
from ..engine import DB, statements
from ..models import Job, JobStatus, jobs_table
from .params import NO_INVOCATION, Invocation, clock
from .statements import CLAIM_MANY, claimed_job

_t = jobs_table


@dataclass(frozen=True)
class HeldClaim:
    """A job claimed by `claim_many`, and its row's state before the claim (to hand it back unused)."""

    job: Job
    previous_status: str
    previous_started_at: datetime | None
    previous_heartbeat_at: datetime | None = None
    previous_invocation: Invocation = NO_INVOCATION


def claim_many(
    db: DB,
    wanted: list[tuple[UUID, str]],
    *,
    stale_after: timedelta,
    silent_after: timedelta | None = None,
    now: datetime | None = None,
    invocation: Invocation = NO_INVOCATION,
) -> dict[UUID, HeldClaim]:
    """Claim every (job id, type) the claim rule allows, in one statement (PostgreSQL). A row another
    transaction holds is skipped, never waited for."""
    if not wanted:
        return {}
    now = now or utcnow()
    params: dict[str, object] = {"ids": [job_id for job_id, _ in wanted], "types": [t for _, t in wanted], "now": now}
    params |= clock(now, stale_after=stale_after, silent_after=silent_after or stale_after)
    params |= invocation.params()
    with statements(db) as conn:
        rows = conn.execute(CLAIM_MANY, params).all()
    return {
        row.id: HeldClaim(
            claimed_job(row, now, invocation),
            row.previous_status,
            row.previous_started_at,
            row.previous_heartbeat_at,
            Invocation(row.previous_request_id, row.previous_trace_id),
        )
        for row in rows
    }


def release_claims(db: DB, held: list[HeldClaim]) -> int:
    """Hand claims the batch did not use back as they were: status, started_at, heartbeat_at and the invocation
    restored, the attempt not spent. Only a row still processing on that attempt (nobody took it since)."""
    released = 0
    with statements(db) as conn:
        for claim in held:
            stmt = (
                update(_t)
                .where(
                    _t.c.id == claim.job.id,
                    _t.c.status == JobStatus.PROCESSING.value,
                    _t.c.attempts == claim.job.attempts,
                )
                .values(
                    status=claim.previous_status,
                    attempts=_t.c.attempts - 1,
                    started_at=claim.previous_started_at,
                    heartbeat_at=claim.previous_heartbeat_at,
                    request_id=claim.previous_invocation.request_id,
                    trace_id=claim.previous_invocation.trace_id,
                    updated_at=claim.job.updated_at,
                )
            )
            released += conn.execute(stmt).rowcount
    return released
