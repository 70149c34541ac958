"""No statement the worker, the sweeper or a publisher sends reads the jobs table by a sequential scan.

Each operation runs for real in one transaction (then rolled back), every statement it sends is captured as
sent (SQL and parameters, from SQLAlchemy's before_cursor_execute), and PostgreSQL plans each again with
sequential scans disabled: it then plans one only where no index can serve the statement, so a plan without
one proves an index path whatever the test table's size. bench/table_scale.py measures the same operations
on 10,000,000 rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, cast

import pytest
from sqlalchemy import Connection, event

from db import DB, JobRequest, JobStatus, enqueue_many, utcnow
from db.lifecycle import cancel_requested, cancel_running, claim_job, complete_and_claim, complete_job, fail_job
from db.plans import sequential_scans
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

pytestmark = pytest.mark.integration

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


def _scans(conn: Connection, statement: str, parameters: Any) -> list[dict[str, Any]]:
    raw = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar_one()
    document = json.loads(raw) if isinstance(raw, str) else raw
    return sequential_scans(document[0]["Plan"], "background_jobs")


OPERATIONS: dict[str, Callable[[Connection, dict[str, Any]], Any]] = {
    "claim": lambda c, j: claim_job(c, j["pending"][0].id, stale_after=STALE, job_type="test-echo"),
    "claim that misses": lambda c, j: claim_job(c, j["done"].id, stale_after=STALE, job_type="test-echo"),
    "complete and claim": lambda c, j: complete_and_claim(
        cast(DB, c), (j["running"].id, 1), j["pending"][1].id, stale_after=STALE, job_type="test-echo"
    ),
    "complete": lambda c, j: complete_job(c, j["running"].id, attempt=1),
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


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_no_statement_scans_the_jobs_table(pg_db: DB, name: str) -> None:
    jobs = {
        "pending": [insert_job(pg_db, sent_at=utcnow()) for _ in range(3)],
        "running": insert_job(pg_db, status=JobStatus.PROCESSING, attempts=1, started_at=utcnow()),
        "done": insert_job(pg_db, status=JobStatus.COMPLETED, attempts=1),
    }
    with pg_db.engine.connect() as conn, conn.begin() as transaction:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        with captured(conn) as sent:
            OPERATIONS[name](conn, jobs)
        assert sent, "the operation sent no statement"
        for statement, parameters in sent:
            assert _scans(conn, statement, parameters) == [], statement
        transaction.rollback()


def test_the_check_sees_a_scan_when_no_index_serves(pg_db: DB) -> None:
    """The assertion can fail: planned the same way, a filter on the error text (no index) scans the table."""
    with pg_db.engine.connect() as conn, conn.begin() as transaction:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        assert _scans(conn, "SELECT id FROM background_jobs WHERE error = %(e)s", {"e": "boom"}) != []
        transaction.rollback()
