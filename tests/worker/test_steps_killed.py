"""A worker killed (SIGKILL, a real process) in the middle of a step: the step runs again, at least once, on
the next delivery; the steps it completed before do not. PostgreSQL and moto's SQS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from db import DB, JobStatus, Queue, get_job, publish
from db.steps import journal
from tests.support.esm import FakeLambdaContext, acknowledge, receive_event
from tests.support.steps_jobs import STEPPED, Empty, stepped_handler
from tests.support.worker_support import job_type_for_test, make_config
from worker.batch import process_batch
from worker.runtime import Runtime

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

_KILLED_IN_A_STEP = """
import json, sys
from pathlib import Path
from tests.support.queues import Queue
from tests.support.steps_jobs import STEPPED, Empty, stepped_handler
from tests.support.worker_support import job_type_for_test, make_config
import worker.batch
from worker.runtime import Runtime

with job_type_for_test(STEPPED, Empty, stepped_handler(Path(sys.argv[3]), die_in_step_two=True), max_attempts=3):
    event = json.loads(Path(sys.argv[2]).read_text())
    queue = Queue(None, "https://sqs.us-east-1.amazonaws.com/123456789012/unused")
    worker.batch.process_batch(event, None, Runtime(make_config(sys.argv[1], queue, queue), sqs=object()))
print("not reached", flush=True)
"""


def test_a_worker_killed_in_a_step_runs_that_step_again_and_not_the_ones_before(
    pg_url: str, pg_db: DB, queue: Queue, dlq: Queue, tmp_path: Path
) -> None:
    log = tmp_path / "side-effects.log"
    with job_type_for_test(STEPPED, Empty, stepped_handler(log), max_attempts=3):
        _killed_then_redelivered(pg_url, pg_db, queue, dlq, tmp_path, log)


def _killed_then_redelivered(pg_url: str, pg_db: DB, queue: Queue, dlq: Queue, tmp_path: Path, log: Path) -> None:
    job = publish(pg_db, STEPPED, {}, queue=queue)
    event = receive_event(queue)
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event))
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_IN_A_STEP, pg_url, str(event_file), str(log)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert log.read_text().split() == ["one", "two-started"]
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.PROCESSING and row.attempts == 1
    assert [s.name for s in journal(pg_db, job.id)] == ["one"]

    # The dead invocation's message comes back; its claim is stale after `stale_after` (1 s here).
    time.sleep(1.1)
    queue.client.change_message_visibility(
        QueueUrl=queue.url, ReceiptHandle=event["Records"][0]["receiptHandle"], VisibilityTimeout=0
    )
    runtime = Runtime(make_config(pg_url, queue, dlq, stale_after=timedelta(seconds=1)), db=pg_db, sqs=queue.client)
    again = receive_event(queue)
    acknowledge(queue, again, process_batch(again, FakeLambdaContext(), runtime))
    assert log.read_text().split() == ["one", "two-started", "two-started", "two-done", "three"]
    done = get_job(pg_db, job.id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.attempts == 2
    assert [(s.name, s.attempt) for s in journal(pg_db, job.id)] == [("one", 1), ("two", 2), ("three", 2)]
