"""A job's attempts, each as it ended: what an operator reads during an incident ("what happened on each
attempt?"). The attempts that are over are rows the database wrote (migration 0015's trigger), in the
statement that ended each; the latest is the job's row itself (running, completed, or as it last ended), so a
success costs no row. This module only reads them.

An attempt's outcome is the status it left the job in (`completed`, `failed`, `pending` for a snooze or a
slice that gave the job back, `cancelled`), `abandoned` when a later claim found it stale (its invocation died
without a word), or `running`. A retry by an operator starts the count again at 1: the attempts before it
stay, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from .engine import DB, statements
from .models import Job, JobStatus, attempts_table

_a = attempts_table
#: The columns `jobstack show` prints, in order (and the console's table).
ATTEMPT_COLUMNS = ("attempt", "started", "ended", "took", "outcome", "request id", "error")


@dataclass(frozen=True)
class Attempt:
    attempt: int
    started_at: datetime | None
    ended_at: datetime | None  # None: running
    outcome: str
    error: str | None
    #: The invocation that made it (its Lambda request id and X-Ray trace id: migration 0016); None for one
    #: made before that, or by a tool with no invocation.
    request_id: str | None = None
    trace_id: str | None = None

    @property
    def took(self) -> timedelta | None:
        return self.ended_at - self.started_at if self.started_at and self.ended_at else None


def history(db: DB, job: Job, *, limit: int = 200) -> list[Attempt]:
    """The job's attempts, first to last (the latest `limit` recorded, then the row's own)."""
    query = select(_a).where(_a.c.job_id == job.id).order_by(_a.c.id.desc()).limit(limit)
    with statements(db) as conn:
        rows = list(conn.execute(query))
    over = [
        Attempt(r.attempt, r.started_at, r.ended_at, r.outcome, r.error, r.request_id, r.trace_id)
        for r in reversed(rows)
    ]
    return over + _latest(job, over[-1] if over else None)


def _latest(job: Job, recorded: Attempt | None) -> list[Attempt]:
    """The row's own attempt: running, completed, or, if its end was recorded already, nothing more."""
    if job.attempts == 0 or job.started_at is None:
        return []  # waiting for its first (or, after a retry, its next) attempt
    if job.status is JobStatus.PROCESSING:
        return [Attempt(job.attempts, job.started_at, None, "running", None, job.request_id, job.trace_id)]
    if job.status is JobStatus.COMPLETED:
        ended = job.completed_at or job.updated_at
        return [Attempt(job.attempts, job.started_at, ended, "completed", None, job.request_id, job.trace_id)]
    return []  # it ended otherwise: the trigger recorded it


def attempt_row(attempt: Attempt) -> tuple[object, ...]:
    took = f"{attempt.took.total_seconds():.3f} s" if attempt.took is not None else "-"
    request = attempt.request_id or "-"
    ended = attempt.ended_at or "-"
    return (attempt.attempt, attempt.started_at, ended, took, attempt.outcome, request, attempt.error or "")
