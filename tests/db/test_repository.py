"""The lifecycle rules, on PostgreSQL and SQLite alike."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from db import DB, ClaimOutcome, JobStatus, claim_job, complete_job, fail_job, get_job, list_jobs
from db.repository import (
    MAX_ERROR_CHARS,
    pending_older_than,
    processing_older_than,
    requeue_job,
    touch_jobs,
    utcnow,
)
from tests.db.factories import insert_job

pytestmark = pytest.mark.integration
STALE = timedelta(minutes=5)


def test_claim_moves_pending_to_processing_and_counts_the_attempt(any_db: DB) -> None:
    job = insert_job(any_db)
    claim = claim_job(any_db, job.id, stale_after=STALE)
    assert claim.outcome is ClaimOutcome.CLAIMED
    assert claim.job is not None
    assert claim.job.status is JobStatus.PROCESSING
    assert claim.job.attempts == 1
    assert claim.job.started_at is not None
    assert claim.job.started_at.tzinfo is not None
    assert get_job(any_db, job.id) == claim.job


def test_claim_retries_a_failed_job(any_db: DB) -> None:
    job = insert_job(any_db, status=JobStatus.FAILED, attempts=2)
    claim = claim_job(any_db, job.id, stale_after=STALE)
    assert claim.outcome is ClaimOutcome.CLAIMED
    assert claim.job is not None and claim.job.attempts == 3


def test_claim_tells_completed_busy_and_missing_apart(any_db: DB) -> None:
    done = insert_job(any_db, status=JobStatus.COMPLETED, attempts=1)
    busy = insert_job(any_db, status=JobStatus.PROCESSING, attempts=1, started_at=utcnow())
    assert claim_job(any_db, done.id, stale_after=STALE).outcome is ClaimOutcome.COMPLETED
    assert claim_job(any_db, busy.id, stale_after=STALE).outcome is ClaimOutcome.BUSY
    assert claim_job(any_db, uuid.uuid4(), stale_after=STALE).outcome is ClaimOutcome.NOT_FOUND
    assert get_job(any_db, done.id) == done
    assert get_job(any_db, busy.id) == busy


def test_claim_reclaims_a_processing_job_whose_invocation_died(any_db: DB) -> None:
    stale = insert_job(any_db, status=JobStatus.PROCESSING, attempts=1, started_at=utcnow() - STALE * 2)
    claim = claim_job(any_db, stale.id, stale_after=STALE)
    assert claim.outcome is ClaimOutcome.CLAIMED
    assert claim.job is not None and claim.job.attempts == 2


def test_complete_sets_completed_at_and_clears_error(any_db: DB) -> None:
    job = insert_job(any_db)
    claim_job(any_db, job.id, stale_after=STALE)
    fail_job(any_db, job.id, "first try failed")
    claim_job(any_db, job.id, stale_after=STALE)
    assert complete_job(any_db, job.id, attempt=2)
    done = get_job(any_db, job.id)
    assert done is not None
    assert done.status is JobStatus.COMPLETED
    assert done.completed_at is not None
    assert done.error is None


def test_a_zombie_invocation_cannot_settle_a_reclaimed_job(any_db: DB) -> None:
    job = insert_job(any_db)
    first = claim_job(any_db, job.id, stale_after=STALE, now=utcnow() - STALE * 2)
    second = claim_job(any_db, job.id, stale_after=STALE)
    assert first.job is not None and second.job is not None
    assert not complete_job(any_db, job.id, attempt=first.job.attempts)
    assert not fail_job(any_db, job.id, "late", attempt=first.job.attempts)
    row = get_job(any_db, job.id)
    assert row is not None and row.status is JobStatus.PROCESSING and row.attempts == 2
    assert complete_job(any_db, job.id, attempt=second.job.attempts)


def test_fail_never_touches_a_completed_job(any_db: DB) -> None:
    job = insert_job(any_db, status=JobStatus.COMPLETED, attempts=1)
    assert not fail_job(any_db, job.id, "duplicate delivery blew up")
    row = get_job(any_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED and row.error is None


def test_fail_truncates_huge_errors(any_db: DB) -> None:
    job = insert_job(any_db)
    claim_job(any_db, job.id, stale_after=STALE)
    assert fail_job(any_db, job.id, "x" * 100_000)
    row = get_job(any_db, job.id)
    assert row is not None and row.error is not None
    assert len(row.error) == MAX_ERROR_CHARS
    assert row.error.endswith("[truncated]")


def test_list_filters_by_status_type_and_since_newest_first(any_db: DB) -> None:
    now = utcnow()
    old = insert_job(any_db, created_at=now - timedelta(hours=2))
    new = insert_job(any_db, created_at=now - timedelta(minutes=1))
    failed = insert_job(any_db, status=JobStatus.FAILED, created_at=now)
    assert [j.id for j in list_jobs(any_db)] == [failed.id, new.id, old.id]
    assert [j.id for j in list_jobs(any_db, status="pending")] == [new.id, old.id]
    assert [j.id for j in list_jobs(any_db, since=now - timedelta(hours=1))] == [failed.id, new.id]
    assert list_jobs(any_db, type="other") == []
    assert len(list_jobs(any_db, limit=1)) == 1


def test_sweeper_queries_find_only_old_rows_of_their_status(any_db: DB) -> None:
    now = utcnow()
    old_pending = insert_job(any_db, created_at=now - timedelta(minutes=30))
    insert_job(any_db, created_at=now)
    old_processing = insert_job(any_db, status=JobStatus.PROCESSING, attempts=1, started_at=now - timedelta(minutes=30))
    insert_job(any_db, status=JobStatus.PROCESSING, attempts=1, started_at=now)
    assert [j.id for j in pending_older_than(any_db, timedelta(minutes=10))] == [old_pending.id]
    assert [j.id for j in processing_older_than(any_db, timedelta(minutes=10))] == [old_processing.id]


@pytest.mark.parametrize(("column", "value"), [("status", "'exploded'"), ("attempts", "-1"), ("max_attempts", "0")])
def test_the_database_enforces_the_rules(any_db: DB, column: str, value: str) -> None:
    job = insert_job(any_db)
    with pytest.raises(IntegrityError), any_db.begin() as conn:
        conn.execute(text(f"UPDATE background_jobs SET {column} = {value}"))
    assert get_job(any_db, job.id) == job


def test_repository_functions_join_the_callers_transaction(any_db: DB) -> None:
    job = insert_job(any_db)
    with pytest.raises(RuntimeError), any_db.begin() as conn:
        assert claim_job(conn, job.id, stale_after=STALE).outcome is ClaimOutcome.CLAIMED
        raise RuntimeError("caller rolls back")
    row = get_job(any_db, job.id)
    assert row is not None and row.status is JobStatus.PENDING and row.attempts == 0


def test_a_job_out_of_attempts_is_exhausted_not_claimed(any_db: DB) -> None:
    failed = insert_job(any_db, status=JobStatus.FAILED, attempts=5, max_attempts=5)
    died = insert_job(any_db, status=JobStatus.PROCESSING, attempts=5, max_attempts=5, started_at=utcnow() - STALE * 2)
    for job in (failed, died):
        claim = claim_job(any_db, job.id, stale_after=STALE)
        assert claim.outcome is ClaimOutcome.EXHAUSTED
        assert get_job(any_db, job.id) == job


def test_requeue_gives_fresh_attempts_but_refuses_completed_unless_forced(any_db: DB) -> None:
    failed = insert_job(any_db, status=JobStatus.FAILED, attempts=5, max_attempts=5)
    done = insert_job(any_db, status=JobStatus.COMPLETED, attempts=1)
    running = insert_job(any_db, status=JobStatus.PROCESSING, attempts=1, started_at=utcnow())
    requeued = requeue_job(any_db, failed.id)
    assert requeued is not None and requeued.status is JobStatus.PENDING and requeued.attempts == 0
    assert claim_job(any_db, failed.id, stale_after=STALE).outcome is ClaimOutcome.CLAIMED
    assert requeue_job(any_db, done.id) is None
    assert requeue_job(any_db, running.id, force=True) is None
    forced = requeue_job(any_db, done.id, force=True)
    assert forced is not None and forced.status is JobStatus.PENDING


def test_touch_moves_pending_jobs_out_of_the_sweepers_window(any_db: DB) -> None:
    old = insert_job(any_db, created_at=utcnow() - timedelta(minutes=30))
    assert [j.id for j in pending_older_than(any_db, timedelta(minutes=10))] == [old.id]
    assert touch_jobs(any_db, [old.id]) == 1
    assert pending_older_than(any_db, timedelta(minutes=10)) == []


def test_a_message_of_another_type_never_claims_or_fails_the_row(any_db: DB) -> None:
    job = insert_job(any_db)
    claim = claim_job(any_db, job.id, stale_after=STALE, job_type="resize-image")
    assert claim.outcome is ClaimOutcome.TYPE_MISMATCH
    assert not fail_job(any_db, job.id, "garbage", job_type="resize-image")
    assert get_job(any_db, job.id) == job
    assert claim_job(any_db, job.id, stale_after=STALE, job_type="test-echo").outcome is ClaimOutcome.CLAIMED
