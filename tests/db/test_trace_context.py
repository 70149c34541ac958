"""The publisher's side of tracing (db/trace_context.py): what a job carries, and when it carries nothing."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.orm import Session

from db import DB, JobRequest, Queue, enqueue, get_job, publish, publish_many
from db.message import JobMessage, message_size
from db.trace_context import current_traceparent, trace_id_of, valid_traceparent
from tests.support.esm import drain
from tests.support.tracing import Spans

pytestmark = pytest.mark.integration


def test_outside_a_span_a_job_carries_no_trace_context(pg_db: DB, queue: Queue, spans: Spans) -> None:
    assert current_traceparent() is None
    job = publish(pg_db, "test-echo", {}, queue=queue)
    [message] = drain(queue)
    assert "traceparent" not in message.get("MessageAttributes", {})
    assert get_job(pg_db, job.id).traceparent is None  # type: ignore[union-attr]


def test_every_way_of_publishing_captures_the_current_span(pg_db: DB, queue: Queue, spans: Spans) -> None:
    """publish, publish_many and enqueue (sent after the commit) all carry the span current when they were
    called, in the message attribute and in the row."""
    with spans.tracer().start_as_current_span("request") as request:
        expected = current_traceparent()
        one = publish(pg_db, "test-echo", {}, queue=queue)
        many = publish_many(pg_db, [JobRequest("test-echo", {"n": n}) for n in range(3)], queue=queue)
        with Session(pg_db.engine) as session, session.begin():
            enqueued = enqueue(session, "test-echo", {}, queue=queue)
    assert expected is not None and trace_id_of(expected) == f"{request.get_span_context().trace_id:032x}"
    messages = drain(queue)
    assert len(messages) == 5
    assert {m["MessageAttributes"]["traceparent"]["StringValue"] for m in messages} == {expected}
    assert {get_job(pg_db, j.id).traceparent for j in (one, *many, enqueued)} == {expected}  # type: ignore[union-attr]


def test_the_attribute_counts_toward_the_message_size_and_only_valid_contexts_travel() -> None:
    """SQS counts each attribute's name, type and value against the 256 KiB maximum
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html)."""
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    plain = JobMessage(uuid.uuid4(), "t", {})
    traced = JobMessage(plain.job_id, "t", {}, tp)
    extra = message_size(traced.body(), traced.attributes()) - message_size(plain.body(), plain.attributes())
    assert extra == len("traceparent") + len("String") + len(tp)
    assert valid_traceparent(tp) and trace_id_of(tp) == "0af7651916cd43dd8448eb211c80319c"
    for bad in ("00-" + "0" * 32 + "-b7ad6b7169203331-01", "ff-x", "", None, 7):
        assert not valid_traceparent(bad) and trace_id_of(bad if isinstance(bad, str) else None) is None
