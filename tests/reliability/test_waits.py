"""Jobs that wait for a signal, through `jobstack local` (the real Lambda handler, several invocations at
once): each resumes exactly once however many signals race for its key, and never for a signal whose
transaction rolled back."""

from __future__ import annotations

import collections
import threading
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from db import DB, JobStatus, Queue, get_job, list_jobs, publish, signal, signal_now
from tests.support.worker_support import job_type_for_test
from worker.registry import JobContext

JOBS = 40
SENDERS = 8  # threads, each with its own connections, signalling every key


class Approval(BaseModel):
    n: int


class Resumes:
    def __init__(self) -> None:
        self.by_job: collections.Counter[int] = collections.Counter()
        self.payloads: dict[int, Any] = {}
        self.lock = threading.Lock()

    def __call__(self, ctx: JobContext) -> Any:
        got = ctx.wait_for_signal(f"approval:{ctx.payload['n']}", timeout=timedelta(hours=1))
        with self.lock:
            self.by_job[ctx.payload["n"]] += 1
            self.payloads[ctx.payload["n"]] = got.payload
        return got.payload


@pytest.fixture
def resumes() -> Any:
    seen = Resumes()
    with job_type_for_test("approval", Approval, seen, max_attempts=3):
        yield seen


def test_a_signal_resumes_its_waiting_job_exactly_once(
    pg_url: str, pg_db: DB, fast_queues: tuple[Queue, Queue], resumes: Resumes, run_local: Any, record: Any
) -> None:
    """A signal resumes exactly once: only a committed signal releases a waiting job, and a key's job runs
    on once, however many signals race.

    40 jobs wait (4 invocations at once park them, nothing in flight after); for each key a signal in a
    transaction that rolls back, then 8 threads signal every key at once; the jobs resume through 4
    invocations at once: each once, with a committed signal's payload."""
    queue, _ = fast_queues
    jobs = [publish(pg_db, "approval", {"n": n}, queue=queue) for n in range(JOBS)]
    run_local(fast_queues, pg_url, "--concurrency", "4")
    assert {job.status for job in list_jobs(pg_db, limit=JOBS)} == {JobStatus.WAITING}
    for n in range(JOBS):  # rolled back: never resumes anything
        with pg_db.engine.connect() as conn:
            transaction = conn.begin()
            assert len(signal(conn, f"approval:{n}", {"from": "rolled back"}).released) == 1
            transaction.rollback()
    sent: list[Any] = []
    barrier = threading.Barrier(SENDERS)

    def sender(s: int) -> None:
        barrier.wait()
        for n in range(JOBS):
            sent.append(signal_now(pg_db, f"approval:{n}", {"from": s}, queue=queue))

    threads = [threading.Thread(target=sender, args=(s,)) for s in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run_local(fast_queues, pg_url, "--concurrency", "4")
    assert sum(len(s.released) for s in sent) == JOBS, "each key's waiting job released by one signal"
    assert set(resumes.by_job.values()) == {1} and len(resumes.by_job) == JOBS, "each resumed exactly once"
    assert all(payload != {"from": "rolled back"} for payload in resumes.payloads.values())
    for job in jobs:
        done = get_job(pg_db, job.id)
        assert done is not None and done.status is JobStatus.COMPLETED and done.attempts == 1
    record("waiting jobs", JOBS)
    record("signals committed", len(sent))
    record("signals rolled back", JOBS)
    record("resumes", sum(resumes.by_job.values()))
