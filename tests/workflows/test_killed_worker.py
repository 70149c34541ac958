"""A worker killed (SIGKILL, a real process) after the last member's completion committed and before the
callback's message was sent loses nothing: the callback's row is pending and unsent, the sweeper's outbox
relay sends it after its unsent window, and it runs once.

The same holds for SQS's side: the member's message was never acknowledged (the invocation died, and Lambda
returns a failed invocation's whole batch, https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html), so it
comes back and finds its job completed (a duplicate, acknowledged without running).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from db import DB, JobRequest, JobStatus, Queue, get_job, utcnow
from db.workflows import publish_group
from tests.support.esm import FakeLambdaContext, acknowledge, receive_event
from tests.support.workflows import Seen
from worker.batch import process_batch
from worker.runtime import Runtime
from worker.sweeper import sweep

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

_KILLED_BEFORE_SENDING = """
import json, os, signal, sys
from pathlib import Path
from tests.support.queues import Queue
from tests.support.worker_support import make_config
from tests.support.workflows import Seen, Step
from tests.support.worker_support import job_type_for_test
import worker.batch
from worker.runtime import Runtime

def die(*args, **kwargs):
    print("completed, not sent", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

worker.batch.send_released = die  # the callback's send: the process dies just before it
seen = Seen()
with job_type_for_test("wf-member", Step, seen.member, max_attempts=1), \\
        job_type_for_test("wf-callback", Step, seen.callback, max_attempts=2):
    event = json.loads(Path(sys.argv[2]).read_text())
    queue = Queue(None, "https://sqs.us-east-1.amazonaws.com/123456789012/unused")
    worker.batch.process_batch(event, None, Runtime(make_config(sys.argv[1], queue, queue), sqs=object()))
print("not reached", flush=True)
"""


def test_a_worker_killed_between_the_last_completion_and_the_callbacks_send_loses_nothing(
    pg_url: str, pg_db: DB, queue: Queue, runtime: Runtime, seen: Seen, tmp_path: Path
) -> None:
    group = publish_group(
        pg_db, [JobRequest("wf-member", {"n": n}) for n in range(2)], then=JobRequest("wf-callback", {}), queue=queue
    )
    assert group.then is not None
    first = receive_event(queue, max_messages=1)
    acknowledge(queue, first, process_batch(first, FakeLambdaContext(), runtime))
    last = receive_event(queue, max_messages=1)
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(last))
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_BEFORE_SENDING, pg_url, str(event_file)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.strip() == "completed, not sent"
    callback = get_job(pg_db, group.then.id)
    assert callback is not None and callback.status is JobStatus.PENDING and callback.sent_at is None
    assert all(get_job(pg_db, j.id).status is JobStatus.COMPLETED for j in group.jobs)  # type: ignore[union-attr]

    # Lambda returns the dead invocation's batch: the member's message comes back, a duplicate now.
    queue.client.change_message_visibility(
        QueueUrl=queue.url, ReceiptHandle=last["Records"][0]["receiptHandle"], VisibilityTimeout=0
    )
    again = receive_event(queue)
    assert len(again["Records"]) == 1
    assert process_batch(again, FakeLambdaContext(), runtime) == {"batchItemFailures": []}
    assert seen.callbacks == [] and receive_event(queue)["Records"] == []

    later = utcnow() + runtime.config.resend_windows().unsent_after + timedelta(seconds=1)
    assert sweep(runtime, now=later).resent == {"pending": [group.then.id]}
    event = receive_event(queue)
    acknowledge(queue, event, process_batch(event, FakeLambdaContext(), runtime))
    assert len(seen.callbacks) == 1 and [o[1] for o in seen.callbacks[0]] == ["completed", "completed"]
    done = get_job(pg_db, group.then.id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.send_count == 1
