"""Heartbeats, through the worker's batch entry on PostgreSQL and moto's SQS, at a twentieth of the scale of
"a 60 s handler with a 20 s visibility timeout": a 3 s handler, a 2 s visibility timeout, a 1 s beat.

SQS's rule: a received message is hidden for the queue's visibility timeout, and ChangeMessageVisibility
restarts that count from the call (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html).
So without a heartbeat the message of a job that runs longer than the timeout is delivered again while it
runs; with one, it stays hidden until the batch ends, and a killed worker's message is back within the
heartbeat's hold, its claim stale by then, however long the queue's own timeout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from pydantic import BaseModel

from cli.local.embedded import EmbeddedSqs
from db import DB, Job, JobStatus, Queue, get_job, publish
from tests.support.esm import FakeLambdaContext, acknowledge, receive_event
from tests.support.queues import moto_server, queue_pair
from tests.support.worker_support import job_type_for_test, make_config
from worker.batch import process_batch
from worker.config import HEARTBEAT_HOLD
from worker.registry import JobContext
from worker.runtime import Runtime

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BEAT = timedelta(seconds=1)


class Empty(BaseModel):
    pass


def _received_while(seconds: float, queue: Queue) -> list[str]:
    """Every message another consumer could receive from `queue` in the next `seconds`."""
    got: list[str] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        messages = queue.client.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10).get("Messages", [])
        got += [m["MessageId"] for m in messages]
        time.sleep(0.25)
    return got


def _run_a_slow_job(db: DB, sqs: Any, heartbeat: timedelta | None) -> tuple[Job, list[str]]:
    """A 3 s job on a queue whose visibility timeout is 2 s: the job, and what another consumer received from
    the queue while it ran."""
    url = db.engine.url.render_as_string(hide_password=False)
    queue, dlq = queue_pair(sqs, f"hb-{db.dialect}-{heartbeat is None}", VisibilityTimeout="2")
    runs: list[int] = []

    def slow(ctx: JobContext) -> None:
        runs.append(ctx.attempt)
        time.sleep(3)

    runtime = Runtime(make_config(url, queue, dlq, heartbeat=heartbeat), db=db, sqs=queue.client)
    with job_type_for_test("slow", Empty, slow, max_attempts=3):
        job = publish(db, "slow", {}, queue=queue)
        event = receive_event(queue)
        worker = threading.Thread(target=lambda: process_batch(event, FakeLambdaContext(), runtime))
        worker.start()
        seen_meanwhile = _received_while(3.5, queue)
        worker.join(10)
    _close_heartbeat_db(runtime)
    done = get_job(db, job.id)
    assert done is not None and done.status is JobStatus.COMPLETED and runs == [1]
    return done, seen_meanwhile


def test_a_job_longer_than_the_visibility_timeout_is_never_delivered_twice_while_it_runs(any_db: DB, sqs: Any) -> None:
    """On both databases: the local runner's SQLite stamps through a connection of its own to the same file."""
    done, seen_meanwhile = _run_a_slow_job(any_db, sqs, BEAT)
    assert seen_meanwhile == [], "kept invisible while the job ran"
    assert done.heartbeat_at is not None and done.started_at is not None
    assert done.heartbeat_at > done.started_at, "stamped after its claim"


def test_without_a_heartbeat_sqs_hands_a_running_jobs_message_out_again(pg_db: DB, sqs: Any) -> None:
    """The control: the same job with no heartbeat, its message back after the queue's 2 s."""
    _, seen_meanwhile = _run_a_slow_job(pg_db, sqs, None)
    assert seen_meanwhile, "the message should have come back after the 2 s visibility timeout"


def _close_heartbeat_db(runtime: Runtime) -> None:
    """The heartbeat's own connection, made at its first stamp (the worker's is the test's `pg_db`)."""
    if "heartbeat_db" in runtime.__dict__:
        runtime.heartbeat_db.dispose()


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedSqs]:
    """A moto server both this process and the killed worker's talk to."""
    with moto_server(monkeypatch) as server:
        yield server


_KILLED_WHILE_RUNNING = """
import json, sys, time
from datetime import timedelta
from pathlib import Path
import boto3
from tests.support.queues import Queue
from tests.support.worker_support import job_type_for_test, make_config
from tests.support.steps_jobs import Empty, long_running
import worker.batch
from worker.runtime import Runtime

url, endpoint, queue_url, dlq_url, event_file = sys.argv[1:]
sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
queue, dlq = Queue(sqs, queue_url), Queue(sqs, dlq_url)
config = make_config(url, queue, dlq, heartbeat=timedelta(seconds=1), stale_after=timedelta(seconds=60))
with job_type_for_test("long-running", Empty, long_running, max_attempts=3):
    event = json.loads(Path(event_file).read_text())
    worker.batch.process_batch(event, None, Runtime(config, sqs=sqs))
"""


def test_a_killed_workers_job_is_recovered_within_the_heartbeats_hold_not_the_queues_timeout(
    emulator: EmbeddedSqs, pg_url: str, pg_db: DB, tmp_path: Path
) -> None:
    endpoint = emulator.endpoint_url.replace("127.0.0.1", "localhost")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    queue, dlq = queue_pair(sqs, "hb-killed", VisibilityTimeout="60")  # without a heartbeat: back in 60 s
    finished: list[int] = []
    with job_type_for_test("long-running", Empty, lambda ctx: finished.append(ctx.attempt), max_attempts=3):
        job = publish(pg_db, "long-running", {}, queue=queue)
        event = receive_event(queue)
        event_file = tmp_path / "event.json"
        event_file.write_text(json.dumps(event))
        child = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WHILE_RUNNING, pg_url, endpoint, queue.url, dlq.url, str(event_file)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        # Two beats after its claim (the message hidden for their hold, the claim stamped), however long the
        # child took to start: on a loaded 2-core machine its imports alone can outlast a fixed wait.
        deadline = time.monotonic() + 30
        while (claimed := get_job(pg_db, job.id)) is None or claimed.status is not JobStatus.PROCESSING:
            assert time.monotonic() < deadline and child.poll() is None, "the child worker never claimed the job"
            time.sleep(0.05)
        time.sleep(2 * BEAT.total_seconds() + 0.5)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        killed = time.monotonic()
        running = get_job(pg_db, job.id)
        assert running is not None and running.status is JobStatus.PROCESSING and running.heartbeat_at is not None

        runtime = Runtime(
            make_config(pg_url, queue, dlq, heartbeat=BEAT, stale_after=timedelta(seconds=60)), db=pg_db, sqs=sqs
        )
        again: dict[str, object] = {"Records": []}
        while not again["Records"] and time.monotonic() - killed < 20:
            again = receive_event(queue)
        back_after = time.monotonic() - killed
        assert again["Records"], "the killed worker's message came back"
        acknowledge(queue, again, process_batch(again, FakeLambdaContext(), runtime))
    _close_heartbeat_db(runtime)
    assert back_after <= HEARTBEAT_HOLD * BEAT.total_seconds() + 1, f"back after {back_after:.1f} s"
    done = get_job(pg_db, job.id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.attempts == 2 and finished == [2]
