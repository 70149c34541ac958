"""Counts by state and type that stay bounded on a large table (db/readings.py, `jobstack stats` and the
console): exact while PostgreSQL expects few rows, its estimate beyond, a lower bound while its statistics
lag behind a backlog that just grew."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from db import DB, JobStatus, utcnow
from db.readings import job_counts
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration


def _analyze(db: DB) -> None:
    with db.autocommit() as conn:
        conn.execute(text("ANALYZE background_jobs"))


def _bulk(db: DB, n: int, *, status: str, job_type: str, attempts: int = 0) -> None:
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO background_jobs (id, type, payload, status, attempts, max_attempts, created_at, "
                "updated_at) SELECT gen_random_uuid(), :type, '{}'::jsonb, CAST(:status AS varchar), :attempts, 5, "
                "now(), now() FROM generate_series(1, :n)"
            ),
            {"type": job_type, "status": status, "attempts": attempts, "n": n},
        )


def test_few_rows_are_counted_exactly(pg_db: DB) -> None:
    for _ in range(3):
        insert_job(pg_db, type="count-calls")
    insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5)
    insert_job(pg_db, status=JobStatus.COMPLETED, updated_at=utcnow() - timedelta(days=2))  # outside the window
    _analyze(pg_db)
    counts = job_counts(pg_db)
    assert counts.totals["pending"] == 3 and counts.totals["dead"] == 1 and counts.totals["completed"] == 0
    assert counts.by_type["count-calls"] == {"pending": 3}
    assert not counts.estimated and not counts.at_least


def test_a_large_state_is_the_planners_estimate_shared_by_type(pg_db: DB) -> None:
    _bulk(pg_db, 300, status="failed", job_type="count-calls", attempts=5)
    _bulk(pg_db, 100, status="failed", job_type="test-echo", attempts=5)
    _analyze(pg_db)
    counts = job_counts(pg_db, cap=50)
    assert "dead" in counts.estimated
    assert 300 <= counts.totals["dead"] <= 500  # the planner's figure after ANALYZE, near the 400 there are
    shares = {t: row["dead"] for t, row in counts.by_type.items()}
    assert shares["count-calls"] > shares["test-echo"] > 0
    assert abs(sum(shares.values()) - counts.totals["dead"]) <= 2  # the estimate, shared out (rounding aside)


def test_a_backlog_newer_than_the_statistics_is_a_lower_bound(pg_db: DB) -> None:
    _analyze(pg_db)  # statistics of an empty table: the planner expects almost no pending rows
    _bulk(pg_db, 80, status="pending", job_type="test-echo")
    counts = job_counts(pg_db, cap=50)
    assert counts.totals["pending"] == 51 and "pending" in counts.at_least


def test_on_sqlite_a_state_past_the_cap_is_a_lower_bound_never_an_estimate(sqlite_db: DB) -> None:
    """SQLite has no planner estimate: a state past the cap was shown as exactly cap + 1."""
    for _ in range(8):
        insert_job(sqlite_db, type="test-echo")
    counts = job_counts(sqlite_db, cap=5)
    assert counts.totals["pending"] == 6 and "pending" in counts.at_least
    assert not counts.estimated and not counts.estimates
