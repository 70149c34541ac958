"""Two (or eight) workers racing for one job on real PostgreSQL: exactly one wins."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from db import ClaimOutcome, JobStatus, claim_job, create_db, get_job
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("workers", [2, 8])
def test_exactly_one_concurrent_claim_wins(pg_url: str, pg_db, workers: int) -> None:
    job = insert_job(pg_db)
    handles = [create_db(pg_url) for _ in range(workers)]  # one connection each, like separate Lambdas
    for h in handles:  # open the connections first so the race is on the UPDATE, not on connecting
        with h.begin():
            pass
    barrier = threading.Barrier(workers)
    outcomes: list[ClaimOutcome] = []
    lock = threading.Lock()

    def race(handle) -> None:
        barrier.wait()
        outcome = claim_job(handle, job.id, stale_after=timedelta(minutes=5)).outcome
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=race, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for h in handles:
        h.dispose()

    assert sorted(outcomes) == sorted([ClaimOutcome.CLAIMED] + [ClaimOutcome.BUSY] * (workers - 1))
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.PROCESSING and row.attempts == 1
