"""Tenant limits through `jobstack local` on the embedded default, SQLite: concurrent invocations never run more
of a tenant's jobs at once than its limit, the jobs past it wait for their turn and all complete once, and a
tenant's pending quota refuses in one line with nothing written."""

from __future__ import annotations

import json

import pytest

from db import DB, JobRequest, JobStatus, Queue, TenantQuotaExceeded, list_jobs, publish_many
from tests.support.cli_runner import Jobs
from tests.support.esm import drain
from tests.support.flow_control import Keyed, TenantRuns
from tests.support.worker_support import job_type_for_test

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("completion", ["per_job", "batched"])
def test_a_tenants_limit_holds_through_the_local_runner_on_sqlite(
    jobs: Jobs, sqlite_db: DB, queue: Queue, dlq: Queue, completion: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways a pool completes its successes: a batched pool claims a tenant-limited type's jobs one by one,
    and releases the turns its jobs free after the batch's completions are confirmed."""
    monkeypatch.setenv("JOBSTACK_OVERRIDES", json.dumps({"dev": {"completion": completion}}))
    runs = TenantRuns(seconds=0.05)
    url = sqlite_db.engine.url.render_as_string(hide_password=False)
    flags = ["--database-url", url, "--queue-url", queue.url, "--dlq-url", dlq.url, "--json"]
    with job_type_for_test("local-tenant", Keyed, runs, max_attempts=2, tenant_concurrency=1,
                           max_pending_per_tenant=10):  # fmt: skip
        requests = [JobRequest("local-tenant", {"n": n}, tenant="acme") for n in range(8)]
        requests += [JobRequest("local-tenant", {"n": n}, tenant="globex") for n in range(4)]
        publish_many(sqlite_db, requests, queue=queue)
        with pytest.raises(TenantQuotaExceeded, match=r"tenant 'acme' has 8 jobs .* this call adds 3, over its"):
            publish_many(sqlite_db, [JobRequest("local-tenant", {}, tenant="acme") for _ in range(3)], queue=queue)
        done = jobs("local", "--until-empty", "--concurrency", "3", *flags, connect=False)
        assert done.code == 0, done.err
    assert runs.most_at_once("acme") == 1 and runs.most_at_once("globex") == 1
    assert len(runs.runs) == 12, "each job ran once"
    finished = list_jobs(sqlite_db, limit=20)
    assert len(finished) == 12, "the refused call wrote nothing"
    assert {(j.status, j.attempts) for j in finished} == {(JobStatus.COMPLETED, 1)}
    assert drain(dlq) == []
