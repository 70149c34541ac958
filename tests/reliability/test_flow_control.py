"""Flow control under concurrency, through `jobstack local` (the real Lambda handler, several invocations)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from db import DB, JobRequest, JobStatus, Queue, get_job, publish_many
from tests.support.esm import drain
from tests.support.flow_control import HOT, Spans, Starts


def test_at_most_two_jobs_per_concurrency_key_run_at_once(
    pg_url: str, pg_db: DB, fast_queues: tuple[Queue, Queue], tenants: Spans, run_local: Any, record: Any
) -> None:
    """At most N running jobs per concurrency key, across every worker; other keys are not held back.

    12 jobs of one key (N = 2) and 12 jobs of twelve other keys, 6 invocations at once: no attempt spent on a
    throttle, nothing dead-lettered."""
    queue, dlq = fast_queues
    requests = [JobRequest("tenant-sync", {"n": HOT + i}, concurrency_key="hot") for i in range(12)]
    requests += [JobRequest("tenant-sync", {"n": i}, concurrency_key=f"tenant-{i}") for i in range(12)]
    published = publish_many(pg_db, requests, queue=queue)
    stats = run_local(fast_queues, pg_url, "--concurrency", "6", "--batch-size", "2")
    assert sorted(key for key, _, _ in tenants.runs).count("hot") == 12 and len(tenants.runs) == 24
    assert tenants.most_at_once("hot") <= 2
    assert tenants.most_at_once() > 2, "other keys ran alongside the hot one"
    assert drain(dlq) == []
    rows = [get_job(pg_db, job.id) for job in published]
    assert {row.status for row in rows if row} == {JobStatus.COMPLETED}
    assert {row.attempts for row in rows if row} == {1}, "a throttle spends no attempt"
    record("hot key's jobs running at once, at most", tenants.most_at_once("hot"))
    record("all jobs running at once, at most", tenants.most_at_once())
    record("deliveries", stats["records"])


def test_a_rate_limit_holds_across_concurrent_workers(
    pg_url: str, pg_db: DB, fast_queues: tuple[Queue, Queue], limited: Starts, run_local: Any, record: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A rate limit holds across every worker: no one-second window starts more than burst + rate jobs.

    200 jobs at 10 per second (burst 10), 4 invocations at once: at least 19 s from the first start to the
    last, no attempt spent on a throttle, nothing dead-lettered. The bucket grants at most burst + rate
    tokens in any second (db/rate_limits.py; tests/db/test_rate_limits.py to the millisecond); a handler
    starts a claim's round trip after its token, so a window of starts may catch one more token granted
    just before it: the bound checked on starts is burst + rate + 1."""
    limits = {"api": {"per_second": 10, "burst": 10}}
    monkeypatch.setenv("JOBSTACK_OVERRIDES", json.dumps({"dev": {"rate_limits": limits}}))
    queue, dlq = fast_queues
    published = publish_many(pg_db, [JobRequest("api-call", {"n": n}) for n in range(200)], queue=queue)
    stats = run_local(fast_queues, pg_url, "--concurrency", "4")
    assert len(limited.times) == 200
    span = max(limited.times) - min(limited.times)
    assert span >= 19.0 - 0.5, f"200 starts at 10/s after a burst of 10 take 19 s, took {span:.1f} s"
    assert limited.most_in_one_second() <= 10 + 10 + 1
    assert drain(dlq) == []
    rows = [get_job(pg_db, job.id) for job in published]
    assert {row.attempts for row in rows if row} == {1}, "a throttle spends no attempt"
    record("jobs", 200)
    record("first to last start", f"{span:.1f} s")
    record("most starts in one second", limited.most_in_one_second())
    record("deliveries (throttled ones come back)", stats["records"])
