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

from db import DB, Queue, publish
from stacks.settings import load_settings
from tests.support.esm import FakeLambdaContext, receive_event
from tests.support.lambda_logs import kept
from tests.support.synth import cdk_context
from tests.support.worker_support import Calls
from worker.batch import process_batch
from worker.config import LOG_LEVELS
from worker.contract import LAMBDA_LOG_LEVELS
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
