"""`jobstack show` lists a job's steps and its progress; `jobstack retry` keeps completed steps unless
`--from-scratch`: through the CLI against PostgreSQL and moto."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from db import DB, Job, JobStatus, Queue, get_job, utcnow
from db.steps import journal, record_step, report_progress
from tests.support.cli_runner import Jobs
from tests.support.esm import drain
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration


def _with_steps(db: DB) -> Job:
    job = insert_job(db, status=JobStatus.PROCESSING, attempts=1, max_attempts=1)
    for position, name in enumerate(["charge", "render"]):
        assert record_step(db, job.id, attempt=1, position=position, name=name, result='{"ok":1}', started_at=utcnow())
    assert report_progress(db, job.id, attempt=1, progress=0.4, message="rendering page 40 of 100")
    return job


def test_show_lists_the_steps_and_the_progress(jobs: Jobs, pg_db: DB) -> None:
    job = _with_steps(pg_db)
    out = jobs("show", str(job.id)).out
    assert "progress_message" in out and "rendering page 40 of 100" in out and "0.4" in out
    assert "steps (2), completed, kept by a retry unless --from-scratch:" in out
    lines = [line for line in out.splitlines() if "charge" in line or ("render" in line and "bytes" in line)]
    assert len(lines) == 2 and all("8 bytes" in line for line in lines), lines
    data = json.loads(jobs("show", str(job.id), "--json").out)
    assert [s["name"] for s in data["steps"]] == ["charge", "render"] and data["progress"] == 0.4
    row = get_job(pg_db, job.id)
    assert row is not None and row.progress_message == "rendering page 40 of 100"


@pytest.mark.parametrize("from_scratch", [False, True])
def test_retry_keeps_the_steps_unless_from_scratch(jobs: Jobs, pg_db: DB, queue: Queue, from_scratch: bool) -> None:
    job = _with_steps(pg_db)
    with pg_db.begin() as conn:  # failed for good on its only attempt
        conn.execute(text("UPDATE background_jobs SET status = 'failed'"))
    args = ["retry", str(job.id)] + (["--from-scratch"] if from_scratch else [])
    assert jobs(*args).code == 0
    assert len(drain(queue)) == 1
    kept = [s.name for s in journal(pg_db, job.id)]
    assert kept == ([] if from_scratch else ["charge", "render"])


def test_a_refused_retry_from_scratch_forgets_nothing(jobs: Jobs, pg_db: DB, queue: Queue) -> None:
    """A running job is never retried: its journal stays whole."""
    job = _with_steps(pg_db)
    assert jobs("retry", str(job.id), "--from-scratch").code == 1
    assert [s.name for s in journal(pg_db, job.id)] == ["charge", "render"]
    assert drain(queue) == []
