"""`jobstack publish --tenant` and `jobstack stats --by-tenant`, through the CLI against PostgreSQL and moto."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from db import DB, JobStatus, Queue, list_jobs, publish
from db.models import jobs_table
from tests.support.cli_runner import Jobs
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration


def test_the_cli_publishes_with_a_tenant_sent_as_the_group(jobs: Jobs, pg_db: DB, queue: Queue) -> None:
    result = jobs("publish", "test-echo", "--tenant", "acme")
    assert result.code == 0, result.err
    [job] = list_jobs(pg_db, limit=2)
    assert job.tenant == "acme" and job.status is JobStatus.PENDING
    [message] = queue.client.receive_message(QueueUrl=queue.url, MessageSystemAttributeNames=["All"])["Messages"]
    assert message["Attributes"]["MessageGroupId"] == "acme"
    refused = jobs("publish", "test-echo", "--tenant", "has space")
    [line] = refused.err.strip().splitlines()
    assert refused.code != 0 and "tenant must be 1-128 letters, digits or punctuation" in line
    assert len(list_jobs(pg_db, limit=3)) == 1, "nothing written"


def test_stats_by_tenant_lists_the_largest_backlogs_first(jobs: Jobs, pg_db: DB, queue: Queue) -> None:
    for _ in range(3):
        publish(pg_db, "test-echo", {}, queue=queue, tenant="acme")
    publish(pg_db, "test-echo", {}, queue=queue, tenant="globex")
    publish(pg_db, "test-echo", {}, queue=queue)  # no tenant: not a row of this table
    for status in (JobStatus.PROCESSING, JobStatus.FAILED, JobStatus.COMPLETED):
        job = insert_job(pg_db, status=status, attempts=1, max_attempts=1)
        with pg_db.begin() as conn:
            conn.execute(update(jobs_table).where(jobs_table.c.id == job.id).values(tenant="globex"))
    data = json.loads(jobs("stats", "--by-tenant", "--json").out)
    assert data["tenants"] == [
        {"tenant": "acme", "backlog": 3, "running": 0, "failed": 0},
        {"tenant": "globex", "backlog": 1, "running": 1, "failed": 1},
    ]
    out = jobs("stats", "--by-tenant", "--limit", "1").out
    assert "acme" in out and "globex" not in out


def test_the_cli_refuses_a_publish_past_the_tenants_quota_in_one_line(jobs: Jobs, pg_db: DB, queue: Queue) -> None:
    from pydantic import BaseModel

    from tests.support.worker_support import job_type_for_test

    class Row(BaseModel):
        n: int = 0

    with job_type_for_test("import.rows", Row, print, max_attempts=1, max_pending_per_tenant=1):
        assert jobs("publish", "import.rows", "--tenant", "acme").code == 0
        refused = jobs("publish", "import.rows", "--tenant", "acme")
    [line] = refused.err.strip().splitlines()
    assert refused.code != 0 and "over its max_pending_per_tenant of 1: nothing was written" in line
    assert len(list_jobs(pg_db, limit=3)) == 1


def test_show_says_a_parked_job_waits_for_its_tenants_turn(jobs: Jobs, pg_db: DB) -> None:
    job = insert_job(pg_db, status=JobStatus.WAITING, tenant="acme")
    with pg_db.begin() as conn:
        key = {"wait_key": "jobstack:tenant:imports:acme"}
        conn.execute(update(jobs_table).where(jobs_table.c.id == job.id).values(**key))
    shown = jobs("show", str(job.id))
    assert shown.code == 0, shown.err
    assert "waits for its turn since" in shown.out
    assert "tenant 'acme' has every slot of its limit 'imports' taken" in shown.out


def test_stats_counts_parked_jobs_as_waiting_for_their_turn_not_for_a_signal(jobs: Jobs, pg_db: DB) -> None:
    for key in ("jobstack:tenant:imports:acme", "jobstack:tenant:imports:acme", "refund-approval:4711"):
        job = insert_job(pg_db, status=JobStatus.WAITING, tenant="acme")
        with pg_db.begin() as conn:
            conn.execute(update(jobs_table).where(jobs_table.c.id == job.id).values(wait_key=key))
    data = json.loads(jobs("stats", "--json").out)
    assert data["waiting_for_signals"] == [{"prefix": "refund-approval", "jobs": 1}]
    assert data["waiting_for_their_turn"] == 2
    assert "2 job(s) wait for their tenant's turn" in jobs("stats").out
