"""SQS delivers at least once: the same message, delivered 3x concurrently, runs the handler once."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

from db import DB, JobStatus, Queue, create_db, get_job, publish
from tests.support.esm import FakeLambdaContext, receive_event
from tests.support.worker_support import Calls, make_config
from worker.batch import process_batch
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


def test_three_concurrent_deliveries_run_the_handler_once(
    pg_url: str, pg_db: DB, queue: Queue, dlq: Queue, calls: Calls
) -> None:
    responses: list[dict[str, Any]] = []
    answered = threading.Condition()

    def hold_the_claim(_ctx: Any) -> None:
        """The winner runs until both duplicates have answered (however slow this machine is), so each of
        them meets the claim held, never a finished job."""
        with answered:
            assert answered.wait_for(lambda: len(responses) == 2, timeout=30), "the duplicates never answered"

    calls.behaviour = hold_the_claim
    job = publish(pg_db, "count-calls", {}, queue=queue)
    event = receive_event(queue)
    # Three Lambda containers, each with its own connection, get the same message.
    runtimes = [Runtime(make_config(pg_url, queue, dlq), db=create_db(pg_url), sqs=queue.client) for _ in range(3)]
    barrier = threading.Barrier(3)

    def invoke(runtime: Runtime) -> None:
        barrier.wait()
        response = process_batch(copy.deepcopy(event), FakeLambdaContext(), runtime)
        with answered:
            responses.append(response)
            answered.notify_all()

    threads = [threading.Thread(target=invoke, args=(r,)) for r in runtimes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for r in runtimes:
        r.close()

    assert len(calls.runs) == 1
    assert sorted(len(r["batchItemFailures"]) for r in responses) == [0, 1, 1]  # the two losers retry later
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED and row.attempts == 1


def test_a_duplicate_arriving_after_completion_is_acknowledged_without_running(
    pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls
) -> None:
    publish(pg_db, "count-calls", {}, queue=queue)
    event = receive_event(queue)
    first = process_batch(copy.deepcopy(event), FakeLambdaContext(), runtime)
    second = process_batch(copy.deepcopy(event), FakeLambdaContext(), runtime)
    assert first == second == {"batchItemFailures": []}
    assert len(calls.runs) == 1
