"""Attempt history (migration 0015's trigger) through the worker's batch entry, where it meets the statements
the worker really settles with: per-job and batched completion (complete-and-claim, complete_many), on
PostgreSQL and SQLite, and a snooze, which gives its attempt back and so is not an attempt of its own. Each
attempt names the invocation that made it: the Lambda context's request id and the X-Ray trace id Lambda
sets in `_X_AMZN_TRACE_ID` for each invocation."""

from __future__ import annotations

import time
from typing import Any
from uuid import uuid4

import pytest
from pydantic import BaseModel

from db import DB, JobStatus, Queue, get_job, publish
from db.attempts import history
from tests.support.esm import FakeLambdaContext, acknowledge, receive_event
from tests.support.worker_support import job_type_for_test, make_config
from worker.batch import process_batch
from worker.contract import BATCHED, PER_JOB
from worker.exceptions import Snooze
from worker.registry import JobContext
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


class Empty(BaseModel):
    pass


def _until_settled(
    db: DB, queue: Queue, runtime: Runtime, job_ids: list[Any], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Invoke the worker until the jobs complete, each invocation with its own request id and X-Ray trace (as
    Lambda gives them); the trace id of each request id."""
    deadline = time.monotonic() + 20
    invocations: dict[str, str] = {}
    while time.monotonic() < deadline:
        if all((j := get_job(db, i)) is not None and j.status is JobStatus.COMPLETED for i in job_ids):
            return invocations
        event = receive_event(queue)
        if event["Records"]:
            request_id, trace_id = str(uuid4()), f"1-{int(time.time()):08x}-{uuid4().hex[:24]}"
            monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={trace_id};Parent={uuid4().hex[:16]};Sampled=1")
            invocations[request_id] = trace_id
            acknowledge(queue, event, process_batch(event, FakeLambdaContext(aws_request_id=request_id), runtime))
        else:
            time.sleep(0.2)
    raise AssertionError("the jobs did not complete")


@pytest.mark.parametrize("completion", [PER_JOB, BATCHED])
def test_a_failure_a_snooze_and_a_success_through_the_batch(
    any_db: DB, queue: Queue, dlq: Queue, completion: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: dict[Any, int] = {}

    def handler(ctx: JobContext) -> None:
        runs[ctx.job_id] = runs.get(ctx.job_id, 0) + 1
        if runs[ctx.job_id] == 1:
            raise RuntimeError("upstream said 503")
        if runs[ctx.job_id] == 2:
            raise Snooze(1)

    url = any_db.engine.url.render_as_string(hide_password=False)
    config = make_config(url, queue, dlq, backoff_base_seconds=0, backoff_max_seconds=0, completion=completion)
    runtime = Runtime(config, db=any_db, sqs=queue.client)
    with job_type_for_test("flaky-history", Empty, handler, max_attempts=3):
        jobs = [publish(any_db, "flaky-history", {}, queue=queue) for _ in range(3)]  # a batch of several
        invocations = _until_settled(any_db, queue, runtime, [j.id for j in jobs], monkeypatch)
    for job in jobs:
        row = get_job(any_db, job.id)
        assert row is not None
        shown = [(a.attempt, a.outcome) for a in history(any_db, row)]
        assert shown == [(1, "failed"), (2, "completed")], shown  # the snooze spent no attempt, so is none
        failed, completed = history(any_db, row)
        assert "upstream said 503" in (failed.error or "")
        for attempt in (failed, completed):  # each names its own invocation, request and trace
            assert attempt.request_id in invocations and attempt.trace_id == invocations[attempt.request_id]
        assert failed.request_id != completed.request_id  # the retry came back in a later invocation
