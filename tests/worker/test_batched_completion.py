"""A pool with `completion: batched`: its batch's claims in one statement, its successes in one more,
through the worker's batch entry (process_batch, what the Lambda handler runs) against PostgreSQL and moto.

Lambda's event source mapping deletes every record the response does not list as a failure
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting):
so a record may be left out of `batchItemFailures` only once its row is completed, here as in per-job mode.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bench.statements import count_statements
from db import DB, JobRequest, JobStatus, Queue, get_job, publish_many
from tests.support.esm import FakeLambdaContext, receive_event
from tests.support.factories import insert_job
from tests.support.flow_control import HOT, Spans
from tests.support.worker_support import Calls, CountCalls, job_type_for_test
from worker.batch import process_batch
from worker.contract import BATCHED
from worker.runtime import Runtime

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def batched(runtime: Runtime) -> Runtime:
    runtime.config = replace(runtime.config, completion=BATCHED)
    return runtime


def _failed(response: dict[str, Any]) -> set[str]:
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


def test_a_batch_of_ten_costs_two_statements(pg_db: DB, queue: Queue, batched: Runtime) -> None:
    """One claim for the batch and one completion: 0.2 statements a job, against 1.1 per job."""
    publish_many(pg_db, [JobRequest("test-echo", {"n": n}) for n in range(10)], queue=queue)
    event = receive_event(queue)
    assert len(event["Records"]) == 10
    with count_statements(pg_db) as counts:
        assert process_batch(event, FakeLambdaContext(), batched) == {"batchItemFailures": []}
    assert counts == {"UPDATE": 2, "(autocommit)": 2}
    with pg_db.begin() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM background_jobs GROUP BY 1")).all()
    assert [tuple(row) for row in rows] == [("completed", 10)]


def test_failures_are_settled_as_in_per_job_mode(pg_db: DB, queue: Queue, batched: Runtime) -> None:
    jobs = publish_many(
        pg_db, [JobRequest("test-echo", {"fail": "no"} if n == 2 else {"n": n}) for n in range(5)], queue=queue
    )
    event = receive_event(queue)
    response = process_batch(event, FakeLambdaContext(), batched)
    by_job = {json.loads(r["body"])["jobId"]: r["messageId"] for r in event["Records"]}
    assert _failed(response) == {by_job[str(jobs[2].id)]}
    failing = get_job(pg_db, jobs[2].id)
    assert failing is not None and failing.status is JobStatus.FAILED and failing.attempts == 1
    assert all(get_job(pg_db, j.id).status is JobStatus.COMPLETED for j in jobs if j != jobs[2])  # type: ignore[union-attr]


class _RunningOut:
    """A context with plenty of time for the first record, then too little to start any other."""

    def __init__(self) -> None:
        self.asked = 0

    def get_remaining_time_in_millis(self) -> int:
        self.asked += 1
        return 60_000 if self.asked == 1 else 500


def test_claims_the_batch_did_not_use_are_handed_back_unspent(pg_db: DB, queue: Queue, batched: Runtime) -> None:
    jobs = publish_many(pg_db, [JobRequest("test-echo", {"n": n}) for n in range(4)], queue=queue)
    event = receive_event(queue)
    response = process_batch(event, _RunningOut(), batched)
    first = json.loads(event["Records"][0]["body"])["jobId"]
    assert len(_failed(response)) == 3  # deferred, returned to the queue
    for job in jobs:
        row = get_job(pg_db, job.id)
        assert row is not None
        if str(job.id) == first:
            assert row.status is JobStatus.COMPLETED
        else:  # claimed with the batch, never run: pending again, its attempt not spent
            assert (row.status, row.attempts, row.started_at) == (JobStatus.PENDING, 0, None)


def test_a_job_twice_in_one_batch_runs_once(pg_db: DB, queue: Queue, batched: Runtime, calls: Calls) -> None:
    [job] = publish_many(pg_db, [JobRequest("count-calls", {})], queue=queue)
    message = queue.client.receive_message(QueueUrl=queue.url, MessageAttributeNames=["All"])["Messages"][0]
    queue.client.send_message(QueueUrl=queue.url, MessageBody=message["Body"])  # SQS's at-least-once copy
    queue.client.change_message_visibility(
        QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    event = receive_event(queue)
    assert len(event["Records"]) == 2
    response = process_batch(event, FakeLambdaContext(), batched)
    assert len(calls.runs) == 1
    assert len(_failed(response)) == 1  # the copy found its job busy: it comes back, then acknowledges
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED


_KILLED_WORKER = """
import json, sys, time
from pathlib import Path
from tests.support.worker_support import CountCalls, job_type_for_test, make_config
from tests.support.queues import Queue
from worker.batch import process_batch
from worker.runtime import Runtime
from dataclasses import replace
started = Path(sys.argv[3])

def slow(ctx):
    with started.open("a") as f:
        f.write(str(ctx.job_id) + "\\n")
    time.sleep(60)

with job_type_for_test("slow-job", CountCalls, slow, max_attempts=5):
    event = json.loads(Path(sys.argv[2]).read_text())
    queue = Queue(None, "https://sqs.us-east-1.amazonaws.com/123456789012/unused")
    config = replace(make_config(sys.argv[1], queue, queue), completion="batched")
    process_batch(event, None, Runtime(config, sqs=object()))
"""


def test_a_worker_killed_mid_batch_leaves_claims_the_stale_window_reruns(
    pg_url: str, pg_db: DB, queue: Queue, batched: Runtime, tmp_path: Path
) -> None:
    """At least once: a batch killed before its end completes nothing; its claimed rows stay processing
    until the stale window, then the redelivered messages run every job again (its attempt counted)."""
    ids = [insert_job(pg_db, type="slow-job", sent_at=None).id for _ in range(5)]
    for job_id in ids:
        queue.client.send_message(
            QueueUrl=queue.url, MessageBody=json.dumps({"jobId": str(job_id), "type": "slow-job", "payload": {}})
        )
    event = receive_event(queue)
    assert len(event["Records"]) == 5
    event_file, started = tmp_path / "event.json", tmp_path / "started"
    event_file.write_text(json.dumps(event))
    worker = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WORKER, pg_url, str(event_file), str(started)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not started.exists() or not started.read_text()):
        time.sleep(0.05)
    assert started.exists(), "the killed worker never started a handler"
    os.killpg(worker.pid, signal.SIGKILL)  # mid-batch: one handler running, four claimed jobs waiting
    worker.wait(timeout=10)
    with pg_db.begin() as conn:
        rows = conn.execute(text("SELECT status, attempts, count(*) FROM background_jobs GROUP BY 1, 2")).all()
    assert [tuple(row) for row in rows] == [("processing", 1, 5)]
    runs: list[int] = []
    with job_type_for_test("slow-job", CountCalls, lambda ctx: runs.append(ctx.attempt), max_attempts=5):
        early = process_batch(event, FakeLambdaContext(), batched)  # within the stale window: not taken
        assert len(_failed(early)) == 5 and runs == []
        stale = replace(batched.config, stale_after=timedelta(seconds=0))
        batched.config = stale
        time.sleep(0.01)
        assert process_batch(event, FakeLambdaContext(), batched) == {"batchItemFailures": []}
    assert runs == [2] * 5
    assert all(get_job(pg_db, i).status is JobStatus.COMPLETED for i in ids)  # type: ignore[union-attr]


def test_a_gate_that_cannot_batch_claims_its_jobs_one_by_one_and_says_so(
    pg_db: DB, queue: Queue, batched: Runtime, tenants: Spans, caplog: pytest.LogCaptureFixture
) -> None:
    """A batched pool with a type limited per concurrency key: the plain jobs are claimed in the batch's
    one statement, the keyed ones one by one under their key's lock (a batch claim could not count the
    key's slots), and the worker says once why. A keyed success holds its slot until the batch completes
    it, at the batch's end, so with 2 slots the key's third and fourth jobs are returned, unclaimed."""
    plain = [JobRequest("test-echo", {"n": n}) for n in range(3)]
    keyed = [JobRequest("tenant-sync", {"n": HOT + n}, concurrency_key="tenant-42") for n in range(4)]
    publish_many(pg_db, plain + keyed, queue=queue)
    event = receive_event(queue)
    assert len(event["Records"]) == 7
    with caplog.at_level("INFO", logger="jobstack.worker"), count_statements(pg_db) as counts:
        response = process_batch(event, FakeLambdaContext(), batched)
    assert len(_failed(response)) == 2 and len(tenants.runs) == 2
    said = [r for r in caplog.records if r.getMessage() == "claimed one by one in this batched pool"]
    assert [(r.type, r.reason) for r in said] == [  # type: ignore[attr-defined]
        (
            "tenant-sync",
            "concurrency per key (2): its key's running jobs are counted under a lock held by one claim at a time",
        )
    ]
    with pg_db.begin() as conn:
        statuses = conn.execute(text("SELECT type, status, attempts FROM background_jobs ORDER BY type")).all()
    assert sorted(tuple(s) for s in statuses) == sorted(
        [("test-echo", "completed", 1)] * 3
        + [("tenant-sync", "completed", 1)] * 2
        + [("tenant-sync", "pending", 0)] * 2
    )
    assert counts["UPDATE"] >= 1  # the plain jobs' one batch claim
