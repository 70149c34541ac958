"""The operations the worker, the sweeper and a publisher run on the jobs table, each by name, and a way to
capture every statement one sends as sent (SQL and parameters, from SQLAlchemy's before_cursor_execute):
tests/db/test_query_plans.py plans each, tests/db/test_statements_doc.py writes them out for review."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Connection, event

from db import DB, JobRequest, JobStatus, enqueue_many, utcnow
from db.claiming import ClaimPlan, claim_job, claim_many, plan_for
from db.lifecycle import cancel_requested, cancel_running, complete_job, complete_many, fail_job
from db.rate_limits import Limiter
from db.relay import (
    JobTypes,
    ResendWindows,
    abandoned_jobs,
    mark_sent,
    prune_jobs,
    take_due,
    take_for_resend,
    unmark_sent,
    unrelease,
)
from tests.support.factories import insert_job

STALE = timedelta(minutes=15)
WINDOWS = ResendWindows(timedelta(minutes=5), timedelta(minutes=20), timedelta(days=4), STALE)


@contextmanager
def captured(conn: Connection) -> Iterator[list[tuple[str, Any]]]:
    sent: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        sent.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", keep)
    try:
        yield sent
    finally:
        event.remove(conn, "before_cursor_execute", keep)


OPERATIONS: dict[str, Callable[[Connection, dict[str, Any]], Any]] = {
    "claim": lambda c, j: claim_job(c, j["pending"][0].id, stale_after=STALE, job_type="test-echo"),
    "claim that misses": lambda c, j: claim_job(c, j["done"].id, stale_after=STALE, job_type="test-echo"),
    "complete and claim": lambda c, j: ClaimPlan("test-echo", STALE).complete_and_claim(
        cast(DB, c), (j["running"].id, 1), j["pending"][1].id
    ),
    "claim with a rate limit's token": lambda c, j: plan_for(
        "test-echo", stale_after=STALE, limiter=Limiter("stripe", 10.0, 20)
    ).claim(c, j["pending"][0].id),
    "claim many (batched)": lambda c, j: claim_many(
        cast(DB, c), [(job.id, "test-echo") for job in j["pending"]], stale_after=STALE
    ),
    "complete": lambda c, j: complete_job(c, j["running"].id, attempt=1),
    "complete many (batched)": lambda c, j: complete_many(cast(DB, c), [(j["running"].id, 1)]),
    "fail": lambda c, j: fail_job(c, j["running"].id, "boom", attempt=1, job_type="test-echo"),
    "cancel requested?": lambda c, j: cancel_requested(c, j["running"].id),
    "cancel running": lambda c, j: cancel_running(c, j["running"].id, attempt=1),
    "publish": lambda c, j: mark_sent(c, [job.id for job in enqueue_many(c, [JobRequest("test-echo", {})])]),
    "publish many": lambda c, j: mark_sent(c, [job.id for job in enqueue_many(c, [JobRequest("test-echo", {})] * 3)]),
    "sweeper: resend": lambda c, j: take_for_resend(c, WINDOWS, limit=500),
    "sweeper: resend, one pool": lambda c, j: take_for_resend(c, WINDOWS, job_types=JobTypes(only=frozenset({"x"}))),
    "sweeper: unmark": lambda c, j: unmark_sent(c, [j["pending"][2].id]),
    "sweeper: release due": lambda c, j: take_due(c, horizon=utcnow() + timedelta(minutes=15)),
    "sweeper: unrelease": lambda c, j: unrelease(c, [j["pending"][2].id]),
    "sweeper: abandoned": lambda c, j: abandoned_jobs(c, STALE),
    "sweeper: prune completed": lambda c, j: prune_jobs(c, JobStatus.COMPLETED, utcnow() - timedelta(days=7)),
    "sweeper: prune failed": lambda c, j: prune_jobs(c, JobStatus.FAILED, utcnow() - timedelta(days=7)),
}


def seed(db: DB) -> dict[str, Any]:
    """The rows the operations work on: three pending jobs (sent), one running, one completed."""
    return {
        "pending": [insert_job(db, sent_at=utcnow()) for _ in range(3)],
        "running": insert_job(db, status=JobStatus.PROCESSING, attempts=1, started_at=utcnow()),
        "done": insert_job(db, status=JobStatus.COMPLETED, attempts=1),
    }
