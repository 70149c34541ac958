"""The token bucket in the database, on both databases: `burst` tokens at once, then one per 1/per_second,
and how long until the next."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from bench.statements import count_statements
from db import DB, ClaimOutcome, ClaimPlan, JobStatus, claim_job, get_job, plan_for, utcnow
from db.rate_limits import Limiter, take_token
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration
STALE = timedelta(minutes=5)


def _limited(limiter: Limiter) -> ClaimPlan:
    """The claim plan of a type whose starts take `limiter`'s tokens."""
    return plan_for("test-echo", stale_after=STALE, limiter=limiter)


def test_a_burst_then_the_rate(any_db: DB) -> None:
    now = utcnow()
    taken = [take_token(any_db, "api", per_second=10, burst=3, now=now).taken for _ in range(4)]
    assert taken == [True, True, True, False]
    verdict = take_token(any_db, "api", per_second=10, burst=3, now=now)
    assert not verdict.taken and verdict.wait_seconds == pytest.approx(0.1, abs=0.01)
    assert take_token(any_db, "api", per_second=10, burst=3, now=now + timedelta(milliseconds=110)).taken
    assert not take_token(any_db, "api", per_second=10, burst=3, now=now + timedelta(milliseconds=120)).taken
    later = now + timedelta(seconds=60)  # refilled to the burst, never beyond
    assert [take_token(any_db, "api", per_second=10, burst=3, now=later).taken for _ in range(4)] == [
        True, True, True, False,
    ]  # fmt: skip
    assert take_token(any_db, "other", per_second=1, burst=1, now=now).taken  # limiters are separate


def _limits(db: DB, name: str) -> float:
    with db.begin() as conn:
        return float(conn.execute(text("SELECT tokens FROM rate_limiters WHERE name = :n"), {"n": name}).scalar_one())


def test_the_token_rides_on_the_claim_and_a_duplicate_spends_none(pg_db: DB) -> None:
    """PostgreSQL: a rate-limited claim is one statement (the token and the claim, no extra round trip). A
    delivery of a job the claim may not take (completed: a duplicate) takes no token; no token for a
    claimable job is RATE_LIMITED with the wait, the job untouched and no attempt spent."""
    api = Limiter("api", per_second=10, burst=2)
    jobs = [insert_job(pg_db) for _ in range(3)]
    done = insert_job(pg_db, status=JobStatus.COMPLETED, attempts=1)
    now = utcnow()
    with count_statements(pg_db) as counts:
        first = _limited(api).claim(pg_db, jobs[0].id, now=now)
    assert first.outcome is ClaimOutcome.CLAIMED and counts == {"WITH": 1, "(autocommit)": 1}
    assert _limited(api).claim(pg_db, done.id, now=now).outcome is (ClaimOutcome.COMPLETED)
    assert _limits(pg_db, "api") == pytest.approx(1.0)  # the duplicate took none
    assert _limited(api).claim(pg_db, jobs[1].id, now=now).outcome is (ClaimOutcome.CLAIMED)
    limited = _limited(api).claim(pg_db, jobs[2].id, now=now)
    assert limited.outcome is ClaimOutcome.RATE_LIMITED and limited.wait_seconds == pytest.approx(0.1, abs=0.01)
    row = get_job(pg_db, jobs[2].id)
    assert row is not None and (row.status, row.attempts) == (JobStatus.PENDING, 0)


def test_the_token_rides_on_a_completion_and_claim_and_the_completion_stands_without_one(pg_db: DB) -> None:
    """The per-job mode's statement (complete the held success, claim the next) takes the token too; with
    none left, the held success still completes and the claim is RATE_LIMITED."""
    api = Limiter("api", per_second=1, burst=1)
    running = [insert_job(pg_db) for _ in range(2)]
    for job in running:
        assert claim_job(pg_db, job.id, stale_after=STALE).outcome is ClaimOutcome.CLAIMED
    waiting = [insert_job(pg_db) for _ in range(2)]
    now = utcnow()
    with count_statements(pg_db) as counts:
        finished, claim = _limited(api).complete_and_claim(
            pg_db,
            (running[0].id, 1),
            waiting[0].id,
            now=now,
        )
    assert counts == {"WITH": 1, "(autocommit)": 1}
    assert finished.completed and claim.outcome is ClaimOutcome.CLAIMED
    finished, claim = _limited(api).complete_and_claim(pg_db, (running[1].id, 1), waiting[1].id, now=now)
    assert finished.completed and claim.outcome is ClaimOutcome.RATE_LIMITED and claim.wait_seconds > 0.9
    assert get_job(pg_db, waiting[1].id).status is JobStatus.PENDING  # type: ignore[union-attr]


def test_a_rate_limited_claim_on_sqlite_takes_its_token_first(sqlite_db: DB) -> None:
    api = Limiter("api", per_second=10, burst=1)
    jobs = [insert_job(sqlite_db) for _ in range(2)]
    now = utcnow()
    assert _limited(api).claim(sqlite_db, jobs[0].id, now=now).outcome is (ClaimOutcome.CLAIMED)
    limited = _limited(api).claim(sqlite_db, jobs[1].id, now=now)
    assert limited.outcome is ClaimOutcome.RATE_LIMITED and limited.wait_seconds == pytest.approx(0.1, abs=0.01)
