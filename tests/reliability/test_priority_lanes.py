"""Priority lanes under load: each pool's own workers, several Lambda containers at once."""

from __future__ import annotations

import threading
import time
from typing import Any

from db import DB, JobRequest, JobStatus, Queue, get_job, publish_many
from tests.support.esm import drain
from tests.support.flow_control import HIGH, Ranked, containers, lane_router


def test_high_priority_jobs_published_behind_a_backlog_of_low_ones_start_first(
    pg_url: str, pg_db: DB, sqs: Any, queues: tuple[Queue, Queue], lane: tuple[Queue, Queue], ranked: Ranked,
    record: Any,
) -> None:  # fmt: skip
    """A job published with priority="high" does not wait behind another pool's backlog: it starts in its
    lane's own worker.

    120 jobs of 20 ms in the default pool (2 containers: about 1.2 s of backlog), then 4 published with
    priority="high": each of the 4 starts before the backlog's 30th job, in the lane's worker, with nothing
    dead-lettered and one attempt each."""
    router = lane_router(sqs, queues[0], lane[0])
    backlog = publish_many(pg_db, [JobRequest("report", {"n": n}) for n in range(120)], queue=router)
    high = publish_many(pg_db, [JobRequest("report", {"n": HIGH + n}, priority="high") for n in range(4)], queue=router)
    stop = threading.Event()
    threads = containers(pg_url, "default", queues, 2, sqs, stop) + containers(pg_url, "urgent", lane, 1, sqs, stop)
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(ranked.starts) < 124 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    order = ranked.order()
    assert len(order) == 124, f"{len(order)} of 124 jobs ran"
    positions = [order.index(HIGH + n) for n in range(4)]
    backlog_before = [sum(1 for n in order[:p] if n < HIGH) for p in positions]
    assert max(backlog_before) < 30, f"high-priority jobs started after {backlog_before} backlog jobs"
    assert {pool for n, _, pool in ranked.starts if n >= HIGH} == {"urgent"}
    assert {pool for n, _, pool in ranked.starts if n < HIGH} == {"default"}
    rows = [get_job(pg_db, job.id) for job in (*backlog, *high)]
    assert {(row.status, row.attempts) for row in rows if row} == {(JobStatus.COMPLETED, 1)}
    assert {row.priority for row in rows[120:] if row} == {"high"}
    assert drain(queues[1]) == [] and drain(lane[1]) == []
    record("backlog jobs started before each high-priority job", backlog_before)
