"""Every attempt kept, on both databases: the statement that ends an attempt records it (migration 0015's
trigger), whichever way it ends; a retry never erases one; what does not end an attempt records nothing."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import text

from db import DB, JobStatus, claim_job, complete_job, fail_job, get_job, requeue_job, utcnow
from db.attempts import Attempt, history
from db.claiming import claim_many, release_claims
from db.lifecycle import stamp_heartbeats
from db.relay import prune_jobs
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration
STALE = timedelta(minutes=5)


def _attempts(db: DB, job_id: UUID) -> list[Attempt]:
    job = get_job(db, job_id)
    assert job is not None
    return history(db, job)


def _outcomes(db: DB, job_id: UUID) -> list[tuple[int, str, str | None]]:
    return [(a.attempt, a.outcome, a.error) for a in _attempts(db, job_id)]


def test_a_failure_then_a_success_are_two_attempts_with_their_times(any_db: DB) -> None:
    job = insert_job(any_db, max_attempts=3)
    first = claim_job(any_db, job.id, stale_after=STALE)
    assert first.job is not None
    assert fail_job(any_db, job.id, "TimeoutError: upstream", attempt=1)
    assert claim_job(any_db, job.id, stale_after=STALE).job is not None
    assert complete_job(any_db, job.id, attempt=2)
    assert _outcomes(any_db, job.id) == [(1, "failed", "TimeoutError: upstream"), (2, "completed", None)]
    one, two = _attempts(any_db, job.id)
    assert one.started_at == first.job.started_at and one.took is not None and one.took >= timedelta(0)
    assert two.ended_at is not None and one.ended_at is not None and two.ended_at >= one.ended_at


def test_a_stale_claim_taken_over_records_the_attempt_before_it_as_abandoned(any_db: DB) -> None:
    job = insert_job(any_db)
    assert claim_job(any_db, job.id, stale_after=STALE).job is not None
    later = utcnow() + timedelta(hours=1)  # its invocation died: nothing settled it
    assert claim_job(any_db, job.id, stale_after=STALE, now=later).job is not None
    assert _outcomes(any_db, job.id) == [(1, "abandoned", None), (2, "running", None)]


def test_a_retry_keeps_the_attempts_before_it(any_db: DB) -> None:
    job = insert_job(any_db, max_attempts=1)
    claim_job(any_db, job.id, stale_after=STALE)
    fail_job(any_db, job.id, "ValueError: bad row", attempt=1)
    assert requeue_job(any_db, job.id) is not None  # an operator's retry: fresh attempts
    claim_job(any_db, job.id, stale_after=STALE)
    complete_job(any_db, job.id, attempt=1)
    assert _outcomes(any_db, job.id) == [(1, "failed", "ValueError: bad row"), (1, "completed", None)]


def test_a_heartbeat_and_a_claim_handed_back_record_nothing(pg_db: DB) -> None:
    job = insert_job(pg_db)
    held = claim_many(pg_db, [(job.id, job.type)], stale_after=STALE)
    assert stamp_heartbeats(pg_db, [job.id], since=utcnow() - timedelta(minutes=1)) == 1
    assert release_claims(pg_db, list(held.values())) == 1
    assert _attempts(pg_db, job.id) == []
    with pg_db.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM job_attempts")).scalar() == 0


def test_attempts_are_pruned_with_their_job(any_db: DB) -> None:
    job = insert_job(any_db)
    claim_job(any_db, job.id, stale_after=STALE)
    fail_job(any_db, job.id, "first", attempt=1)
    claim_job(any_db, job.id, stale_after=STALE)
    complete_job(any_db, job.id, attempt=2)
    assert len(_attempts(any_db, job.id)) == 2
    assert prune_jobs(any_db, JobStatus.COMPLETED, utcnow() + timedelta(seconds=1)) == 1
    with any_db.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM job_attempts")).scalar() == 0


def test_a_success_writes_no_row_and_a_retry_of_a_completed_job_keeps_it(any_db: DB) -> None:
    """A success is the row's own attempt (no row written: the throughput ceiling's cost); a forced retry of
    the completed job records it before the row moves on."""
    job = insert_job(any_db)
    claim_job(any_db, job.id, stale_after=STALE)
    complete_job(any_db, job.id, attempt=1)
    with any_db.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM job_attempts")).scalar() == 0
    assert _outcomes(any_db, job.id) == [(1, "completed", None)]
    assert requeue_job(any_db, job.id, force=True) is not None
    claim_job(any_db, job.id, stale_after=STALE)
    fail_job(any_db, job.id, "KeyError: 'sku'", attempt=1)
    assert _outcomes(any_db, job.id) == [(1, "completed", None), (1, "failed", "KeyError: 'sku'")]
