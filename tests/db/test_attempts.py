"""Every attempt kept, on both databases: the statement that ends an attempt records it (migration 0015's
trigger), whichever way it ends; a retry never erases one; what does not end an attempt records nothing."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import text

from db import DB, JobStatus, claim_job, complete_job, fail_job, get_job, requeue_job, utcnow
from db.attempts import Attempt, history
from db.claiming import Invocation, claim_many, release_claims
from db.lifecycle import stamp_heartbeats
from db.relay import prune_jobs
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration
STALE = timedelta(minutes=5)
#: Two invocations, as Lambda names them: a request id (a UUID) and an X-Ray trace id.
FIRST = Invocation("0b5d5c4e-1f2a-4b3c-8d9e-0f1a2b3c4d5e", "1-6756a1b2-aaaaaaaaaaaaaaaaaaaaaaaa")
SECOND = Invocation("9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b", "1-6756a1b9-bbbbbbbbbbbbbbbbbbbbbbbb")


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


def _invocations(db: DB, job_id: UUID) -> list[tuple[int, str, str | None, str | None]]:
    return [(a.attempt, a.outcome, a.request_id, a.trace_id) for a in _attempts(db, job_id)]


def test_each_attempt_names_the_invocation_that_made_it(any_db: DB) -> None:
    job = insert_job(any_db, max_attempts=3)
    claim_job(any_db, job.id, stale_after=STALE, invocation=FIRST)
    assert fail_job(any_db, job.id, "TimeoutError", attempt=1)
    claim_job(any_db, job.id, stale_after=STALE, invocation=SECOND)
    assert _invocations(any_db, job.id) == [
        (1, "failed", FIRST.request_id, FIRST.trace_id),
        (2, "running", SECOND.request_id, SECOND.trace_id),
    ]
    assert complete_job(any_db, job.id, attempt=2)
    assert _invocations(any_db, job.id)[-1] == (2, "completed", SECOND.request_id, SECOND.trace_id)


def test_an_abandoned_attempt_names_the_invocation_that_died(any_db: DB) -> None:
    """The id an operator needs is the dead invocation's (its logs say why it died), not its successor's."""
    job = insert_job(any_db)
    claim_job(any_db, job.id, stale_after=STALE, invocation=FIRST)
    later = utcnow() + timedelta(hours=1)
    claim_job(any_db, job.id, stale_after=STALE, now=later, invocation=SECOND)
    assert _invocations(any_db, job.id) == [
        (1, "abandoned", FIRST.request_id, FIRST.trace_id),
        (2, "running", SECOND.request_id, SECOND.trace_id),
    ]


def test_a_claim_handed_back_gives_the_row_its_invocation_back(pg_db: DB) -> None:
    """A batch claim the batch did not use leaves the row as it was, its last invocation included: a later
    takeover must name the invocation that ran the attempt, not one that only held it for a moment."""
    job = insert_job(pg_db)
    claim_job(pg_db, job.id, stale_after=STALE, invocation=FIRST)
    later = utcnow() + timedelta(hours=1)  # FIRST died; SECOND's batch takes the job over, then hands it back
    held = claim_many(pg_db, [(job.id, job.type)], stale_after=STALE, now=later, invocation=SECOND)
    assert release_claims(pg_db, list(held.values())) == 1
    row = get_job(pg_db, job.id)
    assert row is not None and (row.request_id, row.trace_id) == (FIRST.request_id, FIRST.trace_id)
