"""A claim returns only the columns it did not set; the job it reports fills in the rest from what it set
(db/claiming/statements.py: claimed_job). Every way to claim must report the row exactly as it now is, read
back, or the worker would act on a job that is not the one in the table. Each claim here names an invocation
(its request and trace ids, written by the claim itself), which the row read back must carry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from db import DB, ClaimOutcome, Job, JobStatus, claim_job, get_job, plan_for, utcnow
from db.claiming import Invocation, claim_many
from db.claiming.statements import SET_BY_CLAIM, TAKE_SQL
from db.models import jobs_table
from db.rate_limits import Limiter
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration
STALE = timedelta(minutes=5)
LAMBDA = Invocation("3f1c2a9e-8b7d-4e6f-9a1b-2c3d4e5f6a7b", "1-6756a1b2-0123456789abcdef01234567")


def _retried(db: DB) -> Job:
    """A job on its second attempt, carrying what its first left: an error and progress."""
    job = insert_job(db, status=JobStatus.FAILED, attempts=1, error="first attempt: boom", payload={"n": 1})
    with db.begin() as conn:
        conn.execute(
            update(jobs_table).where(jobs_table.c.id == job.id).values(progress=0.5, progress_message="half way")
        )
    return job


def test_what_a_claim_sets_is_what_it_does_not_return() -> None:
    for name in SET_BY_CLAIM:
        assert f"{name} = " in TAKE_SQL, f"{name} is filled in by claimed_job but the claim does not set it"


def test_a_plain_claim_reports_the_row_as_it_is(any_db: DB) -> None:
    job = _retried(any_db)
    claim = claim_job(any_db, job.id, stale_after=STALE, job_type=job.type, invocation=LAMBDA)
    assert claim.outcome is ClaimOutcome.CLAIMED and claim.job is not None
    assert claim.job == get_job(any_db, job.id)
    assert (claim.job.request_id, claim.job.trace_id) == (LAMBDA.request_id, LAMBDA.trace_id)
    assert (claim.job.error, claim.job.progress_message, claim.job.attempts) == ("first attempt: boom", "half way", 2)


def test_a_gated_claim_reports_the_row_as_it_is(any_db: DB) -> None:
    """A rate limit rides in the claim statement on PostgreSQL and is a step before it on SQLite."""
    job = _retried(any_db)
    plan = plan_for(job.type, stale_after=STALE, limiter=Limiter("claimed-job", per_second=10, burst=5))
    claim = plan.claim(any_db, job.id, invocation=LAMBDA)
    assert claim.outcome is ClaimOutcome.CLAIMED and claim.job is not None
    assert claim.job == get_job(any_db, job.id)
    assert claim.job.request_id == LAMBDA.request_id


@pytest.mark.parametrize("settling", [False, True])
def test_a_claim_riding_on_a_completion_reports_the_row_as_it_is(pg_db: DB, settling: bool) -> None:
    done, job = insert_job(pg_db), _retried(pg_db)
    plan = plan_for(job.type, stale_after=STALE)
    held = plan.claim(pg_db, done.id)
    assert held.job is not None
    finished, claim = plan.complete_and_claim(
        pg_db, (done.id, held.job.attempts), job.id, dependents=settling, invocation=LAMBDA
    )
    assert finished.completed and claim.outcome is ClaimOutcome.CLAIMED and claim.job is not None
    assert claim.job == get_job(pg_db, job.id)
    assert claim.job.trace_id == LAMBDA.trace_id


def test_a_batch_claim_reports_each_row_as_it_is(pg_db: DB) -> None:
    jobs = [_retried(pg_db), insert_job(pg_db), insert_job(pg_db)]
    held = claim_many(pg_db, [(j.id, j.type) for j in jobs], stale_after=STALE, now=utcnow(), invocation=LAMBDA)
    assert set(held) == {j.id for j in jobs}
    for job in jobs:
        assert held[job.id].job == get_job(pg_db, job.id)
        assert held[job.id].job.request_id == LAMBDA.request_id


def test_an_id_longer_than_its_column_is_cut_not_refused(any_db: DB) -> None:
    """A claim must not fail over a name: a runner with a longer request id (not Lambda's 36 characters)
    still claims, its id cut to the column's 64."""
    job = insert_job(any_db)
    long = Invocation("r" * 100, "t" * 100)
    claim = claim_job(any_db, job.id, stale_after=STALE, invocation=long)
    assert claim.job is not None and claim.job == get_job(any_db, job.id)
    assert (claim.job.request_id, claim.job.trace_id) == ("r" * 64, "t" * 64)
