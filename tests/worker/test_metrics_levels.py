"""The worker's metrics reach CloudWatch at every log level the settings accept.

Lambda's application log-level filter (JSON log format) drops a stdout line below the function's
ApplicationLogLevel, and a line without a `level` and an RFC 3339 `timestamp` counts as INFO
(https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html). EMF documents are
such lines: at WARN or ERROR an unlevelled one never reaches CloudWatch, so JobsUnavailable and JobsErrored,
and the alarms on them, go silent. Each test runs a real batch (PostgreSQL, moto) at one level, with the
ApplicationLogLevel the stack sets for it (worker/contract.py), and judges stdout by that documented rule
(tests/support/lambda_logs.py).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from db import DB, Queue, get_job, publish
from stacks.settings import load_settings
from tests.support.esm import FakeLambdaContext, receive_event
from tests.support.lambda_logs import kept
from tests.support.synth import cdk_context
from tests.support.worker_support import Calls
from worker.batch import process_batch
from worker.config import LOG_LEVELS
from worker.contract import LAMBDA_LOG_LEVELS
from worker.registry import JobContext
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("log_level", LOG_LEVELS)
def test_the_emf_line_survives_lambdas_log_level_filter(
    log_level: str,
    pg_db: DB,
    queue: Queue,
    runtime: Runtime,
    calls: Calls,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_settings(cdk_context(dev={"log_level": log_level}), "dev")  # a level the settings accept
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "worker")  # EMF is printed in Lambda
    leveled = Runtime(replace(runtime.config, log_level=log_level), db=runtime.db, sqs=runtime.sqs)
    publish(pg_db, "count-calls", {"n": 1}, queue=queue)
    capsys.readouterr()

    process_batch(receive_event(queue), FakeLambdaContext(), leveled)

    printed = capsys.readouterr().out.splitlines()
    reaching_cloudwatch = kept(printed, threshold=LAMBDA_LOG_LEVELS[log_level])
    emf = [json.loads(line) for line in reaching_cloudwatch if '"_aws"' in line]
    assert [doc["JobsSucceeded"] for doc in emf] == [1], printed
    assert set(emf[0]) >= {"JobsUnavailable", "JobsErrored"}  # the two the alarms watch ride on the same line


def test_a_real_batch_emits_each_first_attempts_queue_wait(
    pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """JobQueueWait (ms, publish or run_at → claim) per type in the batch's EMF, one value per first attempt:
    the retry of a failed job is not counted again (its wait is mostly backoff). The values are the rows'
    own started_at - created_at, so the metric and `jobstack stats` agree."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "worker")
    jobs = [publish(pg_db, "count-calls", {"n": n}, queue=queue) for n in range(3)]

    def fail_the_first_once(ctx: JobContext) -> None:
        if ctx.payload["n"] == 0 and ctx.attempt == 1:
            raise RuntimeError("once")

    calls.behaviour = fail_the_first_once
    capsys.readouterr()
    event = receive_event(queue)
    process_batch(event, FakeLambdaContext(), runtime)
    [doc] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    declared = {m["Name"]: m["Unit"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert declared["JobQueueWait"] == "Milliseconds" and doc["JobType"] == "count-calls"
    rows = [get_job(pg_db, j.id) for j in jobs]
    waits = sorted(round((r.started_at - r.created_at).total_seconds() * 1000, 3) for r in rows if r and r.started_at)
    assert sorted(doc["JobQueueWait"]) == waits and len(waits) == 3

    [failed] = [r for r in event["Records"] if str(jobs[0].id) in r["body"]]  # back after its backoff: now
    queue.client.change_message_visibility(
        QueueUrl=queue.url, ReceiptHandle=failed["receiptHandle"], VisibilityTimeout=0
    )
    process_batch(receive_event(queue), FakeLambdaContext(), runtime)
    [again] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert again["JobsSucceeded"] == 1 and "JobQueueWait" not in again
