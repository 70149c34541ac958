"""A job's attempts, each as it ended: what an operator reads during an incident ("what happened on each
attempt?"). The rows are written by the database (migration 0015's trigger), in the statement that ends the
attempt; this module only reads them.

An attempt's outcome is the status it left the job in (`completed`, `failed`, `pending` for a snooze or a
slice that gave the job back, `cancelled`), or `abandoned` when a later claim found it stale (its invocation
died without a word). A retry by an operator starts the count again at 1: the rows before it stay, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import select

from .engine import DB, statements
from .models import attempts_table

_a = attempts_table
#: The columns `jobstack show` prints, in order (and the console's table).
ATTEMPT_COLUMNS = ("attempt", "started", "ended", "took", "outcome", "error")


@dataclass(frozen=True)
class Attempt:
    attempt: int
    started_at: datetime | None
    ended_at: datetime
    outcome: str
    error: str | None

    @property
    def took(self) -> timedelta | None:
        return self.ended_at - self.started_at if self.started_at is not None else None


def history(db: DB, job_id: UUID, *, limit: int = 200) -> list[Attempt]:
    """The job's attempts, first to last (the latest `limit`)."""
    query = select(_a).where(_a.c.job_id == job_id).order_by(_a.c.id.desc()).limit(limit)
    with statements(db) as conn:
        rows = list(conn.execute(query))
    return [Attempt(r.attempt, r.started_at, r.ended_at, r.outcome, r.error) for r in reversed(rows)]


def attempt_row(attempt: Attempt) -> tuple[object, ...]:
    took = f"{attempt.took.total_seconds():.3f} s" if attempt.took is not None else "-"
    return (attempt.attempt, attempt.started_at, attempt.ended_at, took, attempt.outcome, attempt.error or "")
