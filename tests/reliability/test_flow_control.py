"""Flow control under concurrency, through `jobs local` (the real Lambda handler, several invocations)."""

from __future__ import annotations

from typing import Any

from db import DB, JobRequest, JobStatus, Queue, get_job, publish_many
from tests.support.esm import drain
from tests.support.flow_control import HOT, Spans


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
