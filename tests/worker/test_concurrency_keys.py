"""Concurrency per key in the claim: at most N running jobs of a type with the same `concurrency_key`; a claim
gone stale (its invocation died) frees its slot; jobs without a key, and the plain claim, are not limited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from db import DB, ClaimOutcome, claim_job, plan_for, utcnow
from tests.support.factories import insert_job
from tests.support.flow_control import Spans

pytestmark = pytest.mark.integration
STALE = timedelta(minutes=5)
KEYED = plan_for("tenant-sync", stale_after=STALE, concurrency_per_key=2)


def test_the_limit_counts_running_jobs_of_the_key_and_a_stale_claim_frees_its_slot(any_db: DB, tenants: Spans) -> None:
    jobs = [insert_job(any_db, type="tenant-sync") for _ in range(4)]
    with any_db.begin() as conn:
        conn.execute(text("UPDATE background_jobs SET concurrency_key = 'tenant-42'"))
    claims = [KEYED.claim(any_db, j.id) for j in jobs[:3]]
    assert [c.outcome for c in claims] == [ClaimOutcome.CLAIMED, ClaimOutcome.CLAIMED, ClaimOutcome.THROTTLED]
    later = utcnow() + STALE + timedelta(seconds=1)  # both claims' invocations died: their slots are free
    claim = KEYED.claim(any_db, jobs[2].id, now=later)
    assert claim.outcome is ClaimOutcome.CLAIMED
    unkeyed = insert_job(any_db, type="tenant-sync")
    assert KEYED.claim(any_db, unkeyed.id).outcome is (ClaimOutcome.CLAIMED)
    assert claim_job(any_db, jobs[3].id, stale_after=STALE).outcome is ClaimOutcome.CLAIMED
