"""The benchmark's yardsticks must be what docs/benchmarks.md says they are: the seeds' pattern really does
the seeds' work in the seeds' statements, and the latency proxy really forwards, and really delays."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import text

from bench import ceiling, reference
from bench.latency_proxy import LatencyProxy
from bench.statements import count_statements
from db import DB, JobStatus, create_db, get_job
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration


def _event(*jobs: Any) -> dict[str, Any]:
    return {"Records": [{"body": json.dumps({"jobId": str(j.id), "type": j.type, "payload": {}})} for j in jobs]}


def test_the_seeds_pattern_completes_a_job_in_three_transactions(pg_db: DB) -> None:
    job = insert_job(pg_db, type="bench-noop")
    seen: list[Any] = []
    with count_statements(pg_db) as counts:
        reference.handle(pg_db, _event(job), {"bench-noop": seen.append})
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED and row.attempts == 1
    assert seen == [{}]
    assert dict(counts) == {"SELECT": 1, "UPDATE": 2, "COMMIT": 3}


def test_the_seeds_pattern_marks_a_failure_and_raises_for_redelivery(pg_db: DB) -> None:
    job = insert_job(pg_db, type="bench-noop")

    def boom(_payload: Any) -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        reference.handle(pg_db, _event(job), {"bench-noop": boom})
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.FAILED and row.error == "no"


def test_the_latency_proxy_forwards_and_adds_its_delay_to_each_round_trip(pg_url: str) -> None:
    round_trips, one_way_ms = 20, 5.0
    with LatencyProxy(pg_url, one_way_ms=one_way_ms) as proxy:
        db = create_db(proxy.url, application_name="latency-test")
        try:
            with db.autocommit() as conn:
                assert conn.execute(text("SELECT 1")).scalar() == 1  # connected through the proxy
                started = time.perf_counter()
                for _ in range(round_trips):
                    conn.execute(text("SELECT 1"))
                elapsed = time.perf_counter() - started
        finally:
            db.dispose()
    # a lower bound only: each round trip sleeps at least once each way
    assert elapsed >= round_trips * 2 * one_way_ms / 1000


@pytest.mark.parametrize(
    ("mode", "expected"), [("two statements", {"UPDATE": 20}), ("combined", {"UPDATE": 2, "WITH": 9})]
)
def test_the_ceilings_workers_complete_a_batch_in_the_statements_they_are_named_for(
    pg_db: DB, mode: str, expected: dict[str, int]
) -> None:
    """bench.ceiling's "before" is two statements per job; its "after" is the worker's batch of 10: 11."""
    jobs = [insert_job(pg_db, type=ceiling.JOB_TYPE) for _ in range(10)]
    with count_statements(pg_db) as counts:
        ceiling._run_chain(pg_db, [j.id for j in jobs], mode)
    assert {k: v for k, v in counts.items() if k != "(autocommit)"} == expected
    assert counts["(autocommit)"] == sum(expected.values())
    assert {get_job(pg_db, j.id).status for j in jobs} == {JobStatus.COMPLETED}  # type: ignore[union-attr]


def test_the_ceilings_cpu_reading_sees_the_database_work(pg_db: DB) -> None:
    """Other tests' backends start and exit meanwhile: the reading counts growth per process, so one that
    exits never makes the database's CPU go down (a sum over live processes once did, here)."""
    before = ceiling._database_cpu()
    with pg_db.engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM generate_series(1, 3000000)")).scalar_one()
    assert ceiling._database_cpu_used(before) > 0.05
