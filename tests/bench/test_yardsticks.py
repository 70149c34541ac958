"""The benchmark's yardsticks must be what docs/benchmarks.md says they are: the seeds' pattern really does
the seeds' work in the seeds' statements, and the latency proxy really forwards, and really delays."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import text

from bench import reference
from bench.latency_proxy import LatencyProxy
from bench.statements import count_statements
from db import DB, JobStatus, create_db, get_job
from tests.db.factories import insert_job

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
