"""Ordered jobs on FIFO queues: `ordering_key` is the message group; when a record of a group fails in a
batch, the group's later records are returned unrun so order holds, while other groups go on (as
Powertools' FIFO processor does per group). Real PostgreSQL, moto FIFO queues, the real batch.

AWS's rules: a message group delivers nothing more while one of its messages is in flight ("no more
messages for the same message group ID are returned unless you delete the message or it becomes visible",
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-understanding-logic.html),
which is why held-back records are made visible at once; with ReportBatchItemFailures on a FIFO source,
the function must return a failed record and the records after it
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html), here per group.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from db import DB, JobStatus, Queue, get_job, publish, resend
from tests.support.esm import FakeLambdaContext, acknowledge, receive_event
from tests.support.worker_support import Calls, fifo_pair, make_config
from worker.batch import process_batch
from worker.registry import JobContext
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


@pytest.fixture
def fifo(sqs: Any) -> tuple[Queue, Queue]:
    return fifo_pair(sqs, "jobs")


def _groups_and_payloads(event: dict[str, Any]) -> list[tuple[str, int]]:
    return [(r["attributes"]["MessageGroupId"], json.loads(r["body"])["payload"]["n"]) for r in event["Records"]]


def test_a_failure_holds_back_the_rest_of_its_group_and_only_its_group(
    pg_url: str, pg_db: DB, fifo: tuple[Queue, Queue], calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    queue, dlq = fifo
    runtime = Runtime(make_config(pg_url, queue, dlq, backoff_base_seconds=1, backoff_max_seconds=1), db=pg_db,
                      sqs=queue.client)  # fmt: skip
    a = [publish(pg_db, "count-calls", {"n": n}, queue=queue, ordering_key="customer-a") for n in (1, 2, 3)]
    b = [publish(pg_db, "count-calls", {"n": n}, queue=queue, ordering_key="customer-b") for n in (1, 2)]
    failing = {"once": True}

    def second_of_a_fails_once(ctx: JobContext) -> None:
        if ctx.job_id == a[1].id and failing.pop("once", False):
            raise RuntimeError("card declined")

    calls.behaviour = second_of_a_fails_once
    event = receive_event(queue)
    assert sorted(_groups_and_payloads(event)) == [("customer-a", 1), ("customer-a", 2), ("customer-a", 3),
                                                   ("customer-b", 1), ("customer-b", 2)]  # fmt: skip
    response = process_batch(event, FakeLambdaContext(), runtime)
    returned = {r["itemIdentifier"] for r in response["batchItemFailures"]}
    by_job = {json.loads(r["body"])["jobId"]: r["messageId"] for r in event["Records"]}
    assert returned == {by_job[str(a[1].id)], by_job[str(a[2].id)]}, "the failure and what follows it in its group"
    [held] = [r for r in caplog.records if r.getMessage() == "job outcome" and "held back" in str(r.__dict__)]
    assert (held.__dict__["job_id"], held.__dict__["type"]) == (str(a[2].id), "count-calls"), "its log names the job"
    ran = [run["payload"]["n"] for run in calls.runs if run["job_id"] in {j.id for j in a}]
    assert ran == [1, 2], "customer-a's third job did not run before its second succeeded"
    assert all(get_job(pg_db, j.id).status is JobStatus.COMPLETED for j in b)  # type: ignore[union-attr]
    acknowledge(queue, event, response)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and get_job(pg_db, a[2].id).status is not JobStatus.COMPLETED:  # type: ignore[union-attr]
        event = receive_event(queue)
        if event["Records"]:
            acknowledge(queue, event, process_batch(event, FakeLambdaContext(), runtime))
        else:
            time.sleep(0.3)
    order = [run["job_id"] for run in calls.runs if run["job_id"] in {j.id for j in a}]
    assert order == [a[0].id, a[1].id, a[1].id, a[2].id], "the retry came back first; order held"
    assert all(get_job(pg_db, j.id).status is JobStatus.COMPLETED for j in a)  # type: ignore[union-attr]


def test_the_ordering_key_is_the_group_of_every_send_and_needs_a_fifo_queue(
    pg_db: DB, fifo: tuple[Queue, Queue], queue: Queue
) -> None:
    fifo_queue, _ = fifo
    job = publish(pg_db, "test-echo", {}, queue=fifo_queue, ordering_key="customer-c")
    row = get_job(pg_db, job.id)
    assert row is not None and row.ordering_key == "customer-c"
    assert resend([row], queue=fifo_queue) == {}  # the sweeper's or a retry's re-send, within 5 minutes
    got = fifo_queue.client.receive_message(QueueUrl=fifo_queue.url, MaxNumberOfMessages=10, AttributeNames=["All"])
    assert {m["Attributes"]["MessageGroupId"] for m in got["Messages"]} == {"customer-c"}
    # SQS accepts, and never delivers, a message whose deduplication id it saw in the last 5 minutes
    # (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html):
    # a re-send reusing the job id would be lost without an error. Each re-send carries its own.
    assert len(got["Messages"]) == 2
    with pytest.raises(ValueError, match="ordering_key needs a FIFO queue"):
        publish(pg_db, "test-echo", {}, queue=queue, ordering_key="customer-c")
