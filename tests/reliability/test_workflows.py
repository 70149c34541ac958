"""Workflows under concurrency, through `jobstack local` (the real Lambda handler, several invocations at once)."""

from __future__ import annotations

import collections
import time
from typing import Any

from db import DB, JobRequest, JobStatus, Queue, get_job, list_jobs
from db.workflows import publish_group
from tests.support.workflows import Seen

#: Enough that 8 invocations finish members at once many times over (tests/workflows/test_release_races.py
#: proves the same-instant case statement by statement); 1,000 took 50 s a run for no more proof.
MEMBERS = 250


def test_a_group_finished_by_concurrent_workers_makes_exactly_one_callback(
    pg_url: str, pg_db: DB, fast_queues: tuple[Queue, Queue], seen: Seen, run_local: Any, record: Any,
    completion: str,
) -> None:  # fmt: skip
    """Exactly one callback under concurrent completions: the database decides which member finished last.

    A group of 250 members finished by 8 concurrent invocations, per job and batched; the callback runs
    once, after every member, and sees all 250 completed."""
    queue, _ = fast_queues
    started = time.perf_counter()
    group = publish_group(
        pg_db,
        [JobRequest("wf-member", {"n": n}) for n in range(MEMBERS)],
        then=JobRequest("wf-callback", {}),
        queue=queue,
    )
    published = time.perf_counter() - started
    assert group.then is not None
    stats = run_local(fast_queues, pg_url, "--concurrency", "8")
    runs = collections.Counter(n for kind, n in seen.runs if kind == "member")
    assert len(runs) == MEMBERS and set(runs.values()) == {1}
    assert len(seen.callbacks) == 1
    assert len(seen.callbacks[0]) == MEMBERS and {status for _, status, _ in seen.callbacks[0]} == {"completed"}
    callback = get_job(pg_db, group.then.id)
    assert callback is not None and callback.status is JobStatus.COMPLETED and callback.send_count == 1
    assert {job.status for job in list_jobs(pg_db, limit=MEMBERS + 1)} == {JobStatus.COMPLETED}
    record("members", MEMBERS)
    record("invocations at once", 8)
    record("callback runs", len(seen.callbacks))
    record("group published in", f"{published:.2f} s")
    record("records", stats["records"])
