"""Jobs that wait for a signal through `jobstack local` on the embedded default, SQLite: they park with nothing
in flight, and resume once each when their signals commit."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import BaseModel

from db import DB, JobStatus, Queue, get_job, publish, signal_now
from tests.support.cli_runner import Jobs
from tests.support.worker_support import job_type_for_test
from worker.registry import JobContext

pytestmark = pytest.mark.e2e


class Numbered(BaseModel):
    n: int


def test_waiting_jobs_resume_through_the_local_runner_on_sqlite(
    jobs: Jobs, sqlite_db: DB, queue: Queue, dlq: Queue
) -> None:
    resumed: list[int] = []

    def waits(ctx: JobContext) -> object:
        got = ctx.wait_for_signal(f"go:{ctx.payload['n']}", timeout=timedelta(hours=1))
        resumed.append(ctx.payload["n"])
        return got.payload

    url = sqlite_db.engine.url.render_as_string(hide_password=False)
    flags = ["--database-url", url, "--queue-url", queue.url, "--dlq-url", dlq.url, "--json"]
    with job_type_for_test("local-waits", Numbered, waits, max_attempts=2):
        published = [publish(sqlite_db, "local-waits", {"n": n}, queue=queue) for n in range(3)]
        first = jobs("local", "--until-empty", "--concurrency", "2", *flags, connect=False)
        assert first.code == 0, first.err
        assert {get_job(sqlite_db, j.id).status for j in published} == {JobStatus.WAITING}  # type: ignore[union-attr]
        for n in range(3):
            assert len(signal_now(sqlite_db, f"go:{n}", {"n": n}, queue=queue).released) == 1
        second = jobs("local", "--until-empty", "--concurrency", "2", *flags, connect=False)
        assert second.code == 0, second.err
    assert sorted(resumed) == [0, 1, 2]
    for job in published:
        done = get_job(sqlite_db, job.id)
        assert done is not None and done.status is JobStatus.COMPLETED and done.result == {"n": job.payload["n"]}
    assert json.loads(second.out.strip().splitlines()[-1])["records"] >= 3
