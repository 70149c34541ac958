"""publish() and publish_many(): database first, nothing lost, nothing half-written."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from db import (
    DB,
    IdempotencyConflict,
    InvalidBatchItem,
    InvalidPayload,
    JobRequest,
    JobStatus,
    PayloadTooLarge,
    PublishBatchError,
    PublishError,
    Queue,
    UnknownJobType,
    get_job,
    publish,
    publish_many,
    register_job_type,
)
from db.job_types import unregister_job_type
from db.models import jobs_table
from tests.support.esm import drain
from tests.support.sqs_faults import FlakySqs

pytestmark = pytest.mark.integration


def _count(db: DB) -> int:
    with db.begin() as conn:
        return conn.execute(select(func.count()).select_from(jobs_table)).scalar_one()


@pytest.fixture
def resize_type():
    class Resize(BaseModel):
        key: str
        width: int = Field(gt=0)

    job_type = register_job_type("resize-image", Resize, max_attempts=3)
    yield job_type
    unregister_job_type("resize-image")


def test_publish_commits_the_row_then_sends_the_contract(any_db: DB, queue: Queue) -> None:
    job = publish(any_db, "test-echo", {"hello": "wörld"}, queue=queue)

    row = get_job(any_db, job.id)
    assert row is not None and row.status is JobStatus.PENDING and row.attempts == 0
    assert row == job
    [message] = drain(queue)
    assert json.loads(message["Body"]) == {
        "jobId": str(job.id),
        "type": "test-echo",
        "payload": {"hello": "wörld"},
    }
    assert message["MessageAttributes"]["jobType"]["StringValue"] == "test-echo"


def test_payload_is_validated_and_normalised_by_its_schema(any_db: DB, queue: Queue, resize_type) -> None:
    job = publish(any_db, "resize-image", {"key": "a.png", "width": "200"}, queue=queue)
    assert job.payload == {"key": "a.png", "width": 200}
    assert job.max_attempts == 3


@pytest.mark.parametrize(
    ("job_type", "payload", "error", "says"),
    [
        ("no-such-type", {}, UnknownJobType, "unknown job type 'no-such-type'"),
        (
            "resize-image",
            {"key": "a.png", "width": 0},
            InvalidPayload,
            "width: Input should be greater than 0",
        ),
        ("resize-image", {"width": 10}, InvalidPayload, "key: Field required"),
        ("test-echo", ["not", "an", "object"], InvalidPayload, "expected a JSON object, got an array"),
        ("test-echo", {"text": "nul\x00byte"}, InvalidPayload, "NUL character"),
    ],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(
    any_db: DB, queue: Queue, resize_type, job_type: str, payload: Any, error: type, says: str
) -> None:
    with pytest.raises(error) as caught:
        publish(any_db, job_type, payload, queue=queue)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)
    assert _count(any_db) == 0
    assert drain(queue) == []


def test_oversize_message_is_rejected_before_anything_is_written(any_db: DB, sqs) -> None:
    url = sqs.create_queue(QueueName="small")["QueueUrl"]
    small = Queue(sqs, url, max_message_bytes=8192)
    publish(any_db, "test-echo", {"blob": "x" * 6000}, queue=small)
    with pytest.raises(PayloadTooLarge, match=r"over the 6144 bytes a job may use \(the queue's limit of 8192"):
        publish(any_db, "test-echo", {"blob": "x" * 6200}, queue=small)
    assert _count(any_db) == 1


def test_default_limit_is_sqs_one_mebibyte(any_db: DB, queue: Queue) -> None:
    with pytest.raises(PayloadTooLarge, match="1048576"):
        publish(any_db, "test-echo", {"blob": "x" * 1_048_576}, queue=queue)
    assert _count(any_db) == 0


def test_sqs_failure_after_commit_keeps_the_row_pending(any_db: DB, queue: Queue) -> None:
    broken = Queue(FlakySqs(queue.client, fail_sends=True), queue.url)
    with pytest.raises(PublishError) as caught:
        publish(any_db, "test-echo", {"n": 1}, queue=broken)
    row = get_job(any_db, caught.value.job_id)
    assert row is not None and row.status is JobStatus.PENDING
    assert "saved as pending" in str(caught.value)


def test_idempotency_key_returns_the_first_job_and_sends_once(any_db: DB, queue: Queue) -> None:
    first = publish(any_db, "test-echo", {"n": 1}, queue=queue, idempotency_key="order-42")
    again = publish(any_db, "test-echo", {"n": 1}, queue=queue, idempotency_key="order-42")
    other = publish(any_db, "test-echo", {"n": 3}, queue=queue, idempotency_key="order-43")
    assert again == first
    assert first.send_count == 1 and first.sent_at is not None
    assert other.id != first.id
    assert _count(any_db) == 2
    assert sorted(json.loads(m["Body"])["jobId"] for m in drain(queue)) == sorted([str(first.id), str(other.id)])


def test_a_reused_idempotency_key_with_another_payload_is_refused(any_db: DB, queue: Queue) -> None:
    first = publish(any_db, "test-echo", {"n": 1}, queue=queue, idempotency_key="order-42")
    with pytest.raises(IdempotencyConflict) as caught:
        publish(any_db, "test-echo", {"n": 2}, queue=queue, idempotency_key="order-42")
    message = str(caught.value)
    assert "'order-42'" in message and str(first.id) in message and "\n" not in message
    assert get_job(any_db, first.id) == first
    assert len(drain(queue)) == 1


def test_retrying_after_publish_error_with_the_same_key_sends_the_pending_job(any_db: DB, queue: Queue) -> None:
    broken = Queue(FlakySqs(queue.client, fail_sends=True), queue.url)
    with pytest.raises(PublishError) as caught:
        publish(any_db, "test-echo", {"n": 1}, queue=broken, idempotency_key="signup-7")
    unsent = get_job(any_db, caught.value.job_id)
    assert unsent is not None and unsent.sent_at is None and unsent.send_count == 0
    job = publish(any_db, "test-echo", {"n": 1}, queue=queue, idempotency_key="signup-7")
    assert job.id == caught.value.job_id
    assert [json.loads(m["Body"])["jobId"] for m in drain(queue)] == [str(job.id)]
    row = get_job(any_db, job.id)
    assert row is not None and row.send_count == 1 and row.sent_at is not None
    publish(any_db, "test-echo", {"n": 1}, queue=queue, idempotency_key="signup-7")
    assert drain(queue) == []  # sent now: a third call sends nothing


@pytest.mark.parametrize("delay", [-1, 901])
def test_delay_outside_sqs_range_is_rejected(any_db: DB, queue: Queue, delay: int) -> None:
    with pytest.raises(ValueError, match="delay_seconds must be between 0 and 900"):
        publish(any_db, "test-echo", {}, queue=queue, delay_seconds=delay)
    assert _count(any_db) == 0


def test_delayed_job_is_not_visible_at_once(any_db: DB, queue: Queue) -> None:
    publish(any_db, "test-echo", {}, queue=queue, delay_seconds=60)
    assert drain(queue) == []
    assert _count(any_db) == 1


def test_publish_many_sends_every_job_in_batches_of_ten(any_db: DB, queue: Queue) -> None:
    jobs = publish_many(any_db, [JobRequest("test-echo", {"i": i}) for i in range(25)], queue=queue)
    assert [j.payload["i"] for j in jobs] == list(range(25))
    assert _count(any_db) == 25
    bodies = [json.loads(m["Body"]) for m in drain(queue)]
    assert sorted(b["jobId"] for b in bodies) == sorted(str(j.id) for j in jobs)


def test_publish_many_with_an_invalid_item_writes_nothing(any_db: DB, queue: Queue) -> None:
    items = [JobRequest("test-echo", {}), JobRequest("test-echo", {}), JobRequest("nope", {})]
    with pytest.raises(InvalidBatchItem, match=r"^item 2: unknown job type 'nope'"):
        publish_many(any_db, items, queue=queue)
    assert _count(any_db) == 0
    assert drain(queue) == []


def test_publish_many_reports_every_failed_entry(any_db: DB, queue: Queue) -> None:
    flaky = Queue(FlakySqs(queue.client, reject_every=3), queue.url)
    with pytest.raises(PublishBatchError) as caught:
        publish_many(any_db, [JobRequest("test-echo", {"i": i}) for i in range(12)], queue=flaky)
    err = caught.value
    assert len(err.failures) == 4
    assert len(err.published) == 8
    received = {uuid.UUID(json.loads(m["Body"])["jobId"]) for m in drain(queue)}
    assert received == set(err.published)
    assert received.isdisjoint(err.failures)
    assert all(get_job(any_db, job_id) is not None for job_id in err.failures)  # pending, for the sweeper


def test_publish_many_honours_idempotency_keys_across_and_within_calls(any_db: DB, queue: Queue) -> None:
    first = publish(any_db, "test-echo", {"n": 0}, queue=queue, idempotency_key="k0")
    jobs = publish_many(
        any_db,
        [
            JobRequest("test-echo", {"n": 0}, idempotency_key="k0"),
            JobRequest("test-echo", {"n": 2}, idempotency_key="k1"),
            JobRequest("test-echo", {"n": 2}, idempotency_key="k1"),
            JobRequest("test-echo", {"n": 4}),
        ],
        queue=queue,
    )
    assert jobs[0] == first
    assert jobs[2] == jobs[1]
    assert _count(any_db) == 3
    assert len(drain(queue)) == 3  # k0 once, k1 once, the keyless one


def test_publish_many_refuses_a_key_reused_with_another_payload_and_writes_nothing(any_db: DB, queue: Queue) -> None:
    first = publish(any_db, "test-echo", {"n": 0}, queue=queue, idempotency_key="k0")
    drain(queue)
    with pytest.raises(IdempotencyConflict, match=str(first.id)):
        publish_many(
            any_db,
            [JobRequest("test-echo", {"n": 9}), JobRequest("test-echo", {"n": 1}, idempotency_key="k0")],
            queue=queue,
        )
    within = [
        JobRequest("test-echo", {"n": 1}, idempotency_key="k5"),
        JobRequest("test-echo", {"n": 2}, idempotency_key="k5"),
    ]
    with pytest.raises(InvalidBatchItem, match=r"^item 1: idempotency key 'k5' is also on item 0 with another payload"):
        publish_many(any_db, within, queue=queue)
    assert _count(any_db) == 1
    assert drain(queue) == []


def test_publish_many_of_nothing_is_nothing(any_db: DB, queue: Queue) -> None:
    assert publish_many(any_db, [], queue=queue) == []


def test_fifo_queue_gets_group_and_deduplication_ids(any_db: DB, sqs) -> None:
    """SendMessage on a FIFO queue requires MessageGroupId and, with content-based deduplication off, a
    MessageDeduplicationId (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html).
    The ordering key is the group; the job id deduplicates a first send."""
    url = sqs.create_queue(QueueName="jobs.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    fifo = Queue(sqs, url)
    job = publish(any_db, "test-echo", {}, queue=fifo, ordering_key="customer-1")
    publish_many(any_db, [JobRequest("test-echo", {}, ordering_key="customer-2")], queue=fifo)
    got = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert {m["Attributes"]["MessageGroupId"] for m in got} == {"customer-1", "customer-2"}
    assert str(job.id) in {m["Attributes"]["MessageDeduplicationId"] for m in got}


def test_a_fifo_job_without_an_ordering_key_is_refused_before_anything_is_written(any_db: DB, sqs) -> None:
    url = sqs.create_queue(QueueName="jobs.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    with pytest.raises(ValueError, match="runs on a FIFO queue, which needs ordering_key"):
        publish(any_db, "test-echo", {}, queue=Queue(sqs, url))
    with pytest.raises(InvalidBatchItem, match=r"item 1: .*needs ordering_key"):
        publish_many(
            any_db, [JobRequest("test-echo", {}, ordering_key="a"), JobRequest("test-echo", {})], queue=Queue(sqs, url)
        )
    assert _count(any_db) == 0
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
