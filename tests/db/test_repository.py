"""The lifecycle rules, on PostgreSQL and SQLite alike."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from db import (
    DB,
    ClaimOutcome,
    ClaimPlan,
    Job,
    JobStatus,
    ResendWindows,
    abandoned_jobs,
    claim_job,
    complete_job,
    count_jobs,
    fail_job,
    get_job,
    job_id_pages,
    list_jobs,
    mark_sent,
    oldest_pending,
    prune_jobs,
    requeue_job,
    take_for_resend,
    unmark_sent,
    utcnow,
)
from db.lifecycle import MAX_ERROR_CHARS
from tests.support.factories import insert_job

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


WINDOWS = ResendWindows(
    unsent_after=timedelta(minutes=5),
    lost_after=timedelta(minutes=20),
    expired_after=timedelta(days=4),
    stale_after=timedelta(minutes=2),
)


def _taken(db: DB, now: datetime) -> list[UUID]:
    return [j.id for j in take_for_resend(db, WINDOWS, now=now)]


def test_a_pending_job_is_resent_only_if_never_sent_or_its_message_expired(any_db: DB) -> None:
    now = utcnow()
    unsent = insert_job(any_db, created_at=now - timedelta(minutes=30))
    insert_job(any_db, created_at=now)  # its publisher is sending it right now
    insert_job(any_db, created_at=now - timedelta(hours=5), sent_at=now - timedelta(hours=5))  # backlog
    expired = insert_job(any_db, created_at=now - timedelta(days=5), sent_at=now - timedelta(days=5))
    assert sorted(_taken(any_db, now)) == sorted([unsent.id, expired.id])
    assert _taken(any_db, now) == []  # taken is marked: a second sweep, or a concurrent one, sends nothing
    row = get_job(any_db, unsent.id)
    assert row is not None and row.sent_at == now and row.send_count == 1


def test_a_failed_job_with_attempts_left_is_resent_once_per_failure_when_its_message_is_gone(any_db: DB) -> None:
    now = utcnow()

    def failed(attempts: int, failed_ago: timedelta, sent_ago: timedelta) -> Job:
        return insert_job(
            any_db, status=JobStatus.FAILED, attempts=attempts, created_at=now - sent_ago,
            updated_at=now - failed_ago, sent_at=now - sent_ago,
        )  # fmt: skip

    lost = failed(3, failed_ago=timedelta(hours=1), sent_ago=timedelta(hours=2))
    failed(1, failed_ago=timedelta(minutes=1), sent_ago=timedelta(minutes=3))  # its message is on its way back
    insert_job(any_db, status=JobStatus.FAILED, attempts=5, max_attempts=5, updated_at=now - timedelta(hours=1))
    assert _taken(any_db, now) == [lost.id]
    later = _taken(any_db, now + timedelta(hours=1))
    assert lost.id not in later  # re-sent after its failure: not again until it fails again
    assert len(later) == 1  # the recent failure, whose message has now been gone an hour


def test_a_dead_invocations_job_is_resent_once_after_its_message_should_have_returned(any_db: DB) -> None:
    now = utcnow()
    claimed_at = now - timedelta(minutes=30)
    dead = insert_job(
        any_db,
        status=JobStatus.PROCESSING,
        attempts=1,
        started_at=claimed_at,
        sent_at=claimed_at - timedelta(seconds=1),
        created_at=claimed_at,
    )
    insert_job(any_db, status=JobStatus.PROCESSING, attempts=1, started_at=now - timedelta(minutes=10))
    assert _taken(any_db, now) == [dead.id]
    assert dead.id not in _taken(any_db, now + timedelta(hours=1))  # once per claim


def test_unmark_makes_a_refused_send_due_again(any_db: DB) -> None:
    now = utcnow()
    job = insert_job(any_db, created_at=now - timedelta(minutes=30))
    assert _taken(any_db, now) == [job.id]
    assert unmark_sent(any_db, [job.id]) == 1
    row = get_job(any_db, job.id)
    assert row is not None and row.sent_at is None and row.send_count == 0
    assert _taken(any_db, now) == [job.id]


def test_mark_sent_records_each_send(any_db: DB) -> None:
    job = insert_job(any_db)
    assert mark_sent(any_db, [job.id]) == 1
    assert mark_sent(any_db, [job.id]) == 1
    row = get_job(any_db, job.id)
    assert row is not None and row.sent_at is not None and row.send_count == 2


def test_abandoned_jobs_are_dead_invocations_on_their_last_attempt(any_db: DB) -> None:
    long_ago = utcnow() - timedelta(minutes=30)
    last = insert_job(any_db, status=JobStatus.PROCESSING, attempts=5, max_attempts=5, started_at=long_ago)
    insert_job(any_db, status=JobStatus.PROCESSING, attempts=1, started_at=long_ago)
    insert_job(any_db, status=JobStatus.PROCESSING, attempts=5, max_attempts=5, started_at=utcnow())
    assert [j.id for j in abandoned_jobs(any_db, timedelta(minutes=10))] == [last.id]


def test_prune_deletes_only_old_history_in_bounded_batches(any_db: DB) -> None:
    now = utcnow()
    month_ago = now - timedelta(days=31)
    old_done = [insert_job(any_db, status=JobStatus.COMPLETED, attempts=1, updated_at=month_ago) for _ in range(5)]
    new_done = insert_job(any_db, status=JobStatus.COMPLETED, attempts=1)
    exhausted = insert_job(any_db, status=JobStatus.FAILED, attempts=5, max_attempts=5, updated_at=month_ago)
    retrying = insert_job(any_db, status=JobStatus.FAILED, attempts=1, updated_at=month_ago)
    pending = insert_job(any_db, created_at=month_ago)
    cutoff = now - timedelta(days=30)
    assert prune_jobs(any_db, JobStatus.COMPLETED, cutoff, dry_run=True) == 5
    assert all(get_job(any_db, j.id) for j in old_done)  # a dry run deletes nothing
    assert prune_jobs(any_db, JobStatus.COMPLETED, cutoff, limit=2) == 2
    assert prune_jobs(any_db, JobStatus.COMPLETED, cutoff, limit=10) == 3
    assert prune_jobs(any_db, JobStatus.FAILED, cutoff) == 1
    assert get_job(any_db, exhausted.id) is None
    assert [get_job(any_db, j.id) is not None for j in (new_done, retrying, pending)] == [True, True, True]
    with pytest.raises(ValueError, match="only completed, failed, cancelled jobs can be pruned, not pending"):
        prune_jobs(any_db, JobStatus.PENDING, cutoff)


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


def test_a_message_of_another_type_never_claims_or_fails_the_row(any_db: DB) -> None:
    job = insert_job(any_db)
    claim = claim_job(any_db, job.id, stale_after=STALE, job_type="resize-image")
    assert claim.outcome is ClaimOutcome.TYPE_MISMATCH
    assert not fail_job(any_db, job.id, "garbage", job_type="resize-image")
    assert get_job(any_db, job.id) == job
    assert claim_job(any_db, job.id, stale_after=STALE, job_type="test-echo").outcome is ClaimOutcome.CLAIMED


def test_complete_and_claim_is_one_statement_with_both_fences(pg_db: DB) -> None:
    """PostgreSQL: completing job i and claiming job i+1 in one round trip and one commit, each UPDATE with
    the conditions it has alone (the attempt fence, the claimable states, the type)."""
    first, second, other = insert_job(pg_db), insert_job(pg_db), insert_job(pg_db, type="resize-image")
    claimed = claim_job(pg_db, first.id, stale_after=STALE)
    assert claimed.job is not None
    done, claim = ClaimPlan("test-echo", STALE).complete_and_claim(pg_db, (first.id, claimed.job.attempts), second.id)
    assert done.completed and claim.outcome is ClaimOutcome.CLAIMED and claim.job is not None
    assert claim.job.attempts == 1
    row = get_job(pg_db, first.id)
    assert row is not None and row.status is JobStatus.COMPLETED
    # A stale attempt number does not complete; a row of another type is not claimed, and says why.
    done, claim = ClaimPlan("test-echo", STALE).complete_and_claim(pg_db, (second.id, 7), other.id)
    assert not done.completed and claim.outcome is ClaimOutcome.TYPE_MISMATCH
    assert get_job(pg_db, second.id).status is JobStatus.PROCESSING  # type: ignore[union-attr]
    assert get_job(pg_db, other.id) == other


def _holding(pg_db: DB, job_id: UUID) -> Any:
    """Another transaction changing one row and not yet committed: a publisher's or a worker's statement."""
    conn = pg_db.engine.connect()
    conn.execute(text("UPDATE background_jobs SET updated_at = updated_at WHERE id = :id"), {"id": job_id})
    return conn


def _in_thread(work: Callable[[], Any]) -> Any:
    """Run `work` beside the test's open transaction; None if it is still waiting for a lock after 30 s."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    thread.join(timeout=30)
    return result[0] if result else None


def test_completing_and_claiming_never_waits_for_the_claimed_row_so_cannot_deadlock(pg_db: DB) -> None:
    """Seen under load: the combined statement held the completed row and waited for the next one, which a
    publisher's mark_sent held while waiting for the completed row: PostgreSQL aborted one of them. The
    claim now skips a row another transaction is changing (BUSY, retried after a backoff), so the other
    transaction's wait for the completed row ends when this statement commits."""
    done_job, next_job = insert_job(pg_db), insert_job(pg_db)
    attempt = claim_job(pg_db, done_job.id, stale_after=STALE).job.attempts  # type: ignore[union-attr]
    other = _holding(pg_db, next_job.id)
    try:
        outcome = _in_thread(
            lambda: ClaimPlan("test-echo", STALE).complete_and_claim(pg_db, (done_job.id, attempt), next_job.id)
        )
        assert outcome is not None, "the combined statement waited for a row another transaction holds"
        completed, claim = outcome
        assert completed and claim.outcome is ClaimOutcome.BUSY
        # The other transaction now takes the completed row too: no cycle, no deadlock.
        other.execute(text("UPDATE background_jobs SET updated_at = updated_at WHERE id = :id"), {"id": done_job.id})
        other.commit()
    finally:
        other.close()
    assert get_job(pg_db, done_job.id).status is JobStatus.COMPLETED  # type: ignore[union-attr]
    assert claim_job(pg_db, next_job.id, stale_after=STALE).outcome is ClaimOutcome.CLAIMED  # the retry


def test_marking_many_sent_skips_rows_being_changed_instead_of_waiting_holding_others(pg_db: DB) -> None:
    jobs = [insert_job(pg_db) for _ in range(3)]
    worker = _holding(pg_db, jobs[1].id)
    try:
        marked = _in_thread(lambda: mark_sent(pg_db, [j.id for j in jobs]))
        assert marked == 2, "mark_sent waited for (or marked) the row a worker is changing"
    finally:
        worker.rollback()
        worker.close()
    sent = {j.id: get_job(pg_db, j.id).send_count for j in jobs}  # type: ignore[union-attr]
    assert sent == {jobs[0].id: 1, jobs[1].id: 0, jobs[2].id: 1}


def test_job_id_pages_hand_out_each_id_once_while_the_caller_changes_the_rows(pg_db: DB) -> None:
    failed = {insert_job(pg_db, status=JobStatus.FAILED).id for _ in range(7)}
    insert_job(pg_db, status=JobStatus.FAILED, type="resize-image")
    seen: list[UUID] = []
    for page in job_id_pages(pg_db, status="failed", type="test-echo", page=3):
        assert len(page) <= 3
        for job_id in page:
            requeue_job(pg_db, job_id, force=True)  # what a retry does to the rows behind the cursor
        seen.extend(page)
    assert sorted(seen) == sorted(failed)
    assert count_jobs(pg_db, status="failed") == 1 and count_jobs(pg_db, status="pending", type="test-echo") == 7


def test_oldest_pending_is_one_min_on_both_dialects(any_db: DB) -> None:
    assert oldest_pending(any_db) is None
    old = insert_job(any_db, created_at=utcnow() - timedelta(days=2))
    insert_job(any_db)
    insert_job(any_db, status=JobStatus.FAILED, created_at=utcnow() - timedelta(days=9))
    found = oldest_pending(any_db)
    assert found is not None and abs((found - old.created_at).total_seconds()) < 1


def test_a_missed_claim_reads_the_row_by_name_whatever_else_the_table_holds(pg_db: DB) -> None:
    """Teams add columns of their own to `background_jobs` (a region, a trace id). The missed claim's read
    must name its columns: with `SELECT *` matched by position, an extra column shifts every value after
    it, and the database's verdict (`exhausted`) would be read from the team's column."""
    with pg_db.begin() as conn:
        conn.execute(text("ALTER TABLE background_jobs ADD COLUMN region text"))
    job = insert_job(pg_db, status=JobStatus.FAILED, attempts=3, max_attempts=3)
    claim = claim_job(pg_db, job.id, stale_after=timedelta(minutes=5), job_type="test-echo")
    assert claim.outcome is ClaimOutcome.EXHAUSTED
    assert claim.job is not None and (claim.job.id, claim.job.attempts, claim.job.type) == (job.id, 3, "test-echo")
