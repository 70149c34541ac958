"""A job's trace, end to end, with the OpenTelemetry SDK's in-memory exporter: published inside a web
request's span, run through the Lambda entry point (`worker.handler.handler`), real PostgreSQL and moto
behind StrictSqs. The worker uses the OpenTelemetry API only; the SDK here stands in for the user's (the
ADOT layer in a deployment)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from db import DB, JobRequest, Queue, get_job, publish, publish_many, utcnow
from tests.support.esm import FakeLambdaContext, acknowledge, deliver, drain, receive_event
from tests.support.tracing import Spans
from tests.support.worker_support import Calls
from worker import handler as entry
from worker import runtime as runtime_module
from worker.sweeper import sweep

pytestmark = pytest.mark.integration


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, pg_url: str, queue: Queue, dlq: Queue) -> Iterator[Any]:
    """The entry point configured as the stack configures a worker, with `tracing` as given."""

    def use(tracing: str = "otel") -> None:
        monkeypatch.setenv("DATABASE_URL", pg_url)
        monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
        monkeypatch.setenv("QUEUE_URL", queue.url)
        monkeypatch.setenv("DLQ_URL", dlq.url)
        monkeypatch.setenv("JOBSTACK_TRACING", tracing)
        monkeypatch.setenv("JOB_BACKOFF_BASE_SECONDS", "1")
        entry.reset_runtime()

    yield use
    entry.reset_runtime()


def _traceparent(span: Any) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def test_a_job_published_inside_a_span_runs_in_a_span_linked_to_it(
    pg_db: DB, queue: Queue, calls: Calls, spans: Spans, lambda_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The message carries the W3C `traceparent` (https://www.w3.org/TR/trace-context/) and the row keeps it;
    the job's span (kind CONSUMER, OpenTelemetry's messaging conventions) links to the publisher's span and,
    with no invocation span around it, continues the publisher's trace; its children are claim, handler
    and completion. Every log line of the job carries its ids and the trace ids."""
    lambda_env()
    with spans.tracer().start_as_current_span("POST /signup") as request:
        job = publish(pg_db, "count-calls", {"n": 1}, queue=queue)
    publisher = request.get_span_context()
    row = get_job(pg_db, job.id)
    assert row is not None and row.traceparent == _traceparent(request)
    calls.behaviour = lambda ctx: ctx.log.info("sending the welcome e-mail")
    with caplog.at_level(logging.INFO, logger="jobstack.worker"):
        event, response = deliver(queue, entry.handler)
    assert event["Records"][0]["messageAttributes"]["traceparent"]["stringValue"] == row.traceparent
    assert response == {"batchItemFailures": []}

    [span] = spans.named("job count-calls")
    assert span.kind is SpanKind.CONSUMER
    assert [link.context.span_id for link in span.links] == [publisher.span_id]
    assert span.context.trace_id == publisher.trace_id and span.parent is not None
    assert span.parent.span_id == publisher.span_id
    assert span.attributes is not None
    assert (span.attributes["jobstack.job.id"], span.attributes["jobstack.job.type"]) == (str(job.id), "count-calls")
    assert (span.attributes["jobstack.job.attempt"], span.attributes["jobstack.outcome"]) == (1, "succeeded")
    assert span.attributes["messaging.system"] == "aws_sqs"
    assert span.attributes["messaging.destination.name"] == queue.url.rsplit("/", 1)[-1]
    children = sorted(spans.children_of(span), key=lambda s: s.start_time or 0)
    assert [c.name for c in children] == ["claim", "handler", "completion"]
    assert all(span.start_time <= c.start_time and c.end_time <= span.end_time for c in children)  # type: ignore[operator]
    assert span.status.status_code is StatusCode.UNSET

    lines = [r for r in caplog.records if getattr(r, "job_id", None) == str(job.id)]
    assert {r.getMessage() for r in lines} == {"sending the welcome e-mail", "job outcome"}
    for line in lines:
        assert (line.type, line.attempt) == ("count-calls", 1)  # type: ignore[attr-defined]
        assert line.correlation_id == f"{publisher.trace_id:032x}"  # type: ignore[attr-defined]
        assert line.trace_id == f"{span.context.trace_id:032x}"  # type: ignore[attr-defined]


def test_a_re_sent_job_keeps_the_link(pg_db: DB, queue: Queue, calls: Calls, spans: Spans, lambda_env: Any) -> None:
    """The sweeper re-sends a job whose message was lost, outside any span: the copy carries the row's
    `traceparent`, so the job's span still links to the request that published it."""
    lambda_env()
    with spans.tracer().start_as_current_span("POST /orders") as request:
        job = publish(pg_db, "count-calls", {"n": 2}, queue=queue)
    assert len(drain(queue)) == 1  # the message is lost (its retention ran out, say)
    queue.client.purge_queue(QueueUrl=queue.url)
    runtime = runtime_module.current()
    later = utcnow() + runtime.config.resend_windows().expired_after + timedelta(seconds=1)
    assert sweep(runtime, now=later).resent == {"pending": [job.id]}
    deliver(queue, entry.handler)
    [span] = spans.named("job count-calls")
    assert [link.context.span_id for link in span.links] == [request.get_span_context().span_id]
    assert get_job(pg_db, job.id).send_count == 2  # type: ignore[union-attr]


def test_a_failure_marks_the_span_and_an_invocation_span_becomes_its_parent(
    pg_db: DB, queue: Queue, calls: Calls, spans: Spans, lambda_env: Any
) -> None:
    """Under an invocation span (ADOT's Lambda instrumentation makes one), the job's span is its child and
    still links to the publisher; a handler's exception is recorded on `handler`, the job span is an error,
    and the failure's write is its `completion`."""
    lambda_env()
    with spans.tracer().start_as_current_span("POST /import") as request:
        job = publish(pg_db, "count-calls", {"n": 3}, queue=queue)

    def fail(ctx: Any) -> None:
        raise RuntimeError("upstream said no")

    calls.behaviour = fail
    with spans.tracer().start_as_current_span("invocation") as invocation:
        deliver(queue, entry.handler)
    [span] = spans.named("job count-calls")
    assert span.parent is not None and span.parent.span_id == invocation.get_span_context().span_id
    assert [link.context.span_id for link in span.links] == [request.get_span_context().span_id]
    assert span.status.status_code is StatusCode.ERROR and "upstream said no" in (span.status.description or "")
    children = {c.name: c for c in spans.children_of(span)}
    assert set(children) == {"claim", "handler", "completion"}
    assert [e.name for e in children["handler"].events] == ["exception"]
    assert get_job(pg_db, job.id).error == "RuntimeError: upstream said no"  # type: ignore[union-attr]


def test_each_job_of_a_batch_has_its_own_completion_span_even_when_it_rode_on_the_next_claim(
    pg_db: DB, queue: Queue, calls: Calls, spans: Spans, lambda_env: Any
) -> None:
    """Per-job completion sends a success's UPDATE with the next record's claim (worker/completion.py): its
    `completion` span is that statement, and the job's span ends with it, not at the end of the batch."""
    lambda_env()
    with spans.tracer().start_as_current_span("POST /bulk"):
        publish_many(pg_db, [JobRequest("count-calls", {"n": n}) for n in range(3)], queue=queue)
    event = receive_event(queue)
    assert len(event["Records"]) == 3
    acknowledge(queue, event, entry.handler(event, FakeLambdaContext()))
    jobs = spans.named("job count-calls")
    assert len(jobs) == 3
    ends = sorted(j.end_time for j in jobs)  # type: ignore[type-var]
    assert len(set(ends)) == 3, "each job's span ends with its own completion"
    for span in jobs:
        [completion] = [c for c in spans.children_of(span) if c.name == "completion"]
        assert completion.end_time == span.end_time


def test_with_tracing_off_no_span_is_made_and_log_lines_still_correlate(
    pg_db: DB, queue: Queue, calls: Calls, spans: Spans, lambda_env: Any, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """`tracing: off` (the default): not one span, even with an SDK configured; the outcome line still
    carries the publisher's trace id (correlation_id) and the invocation's X-Ray trace id, which Lambda puts
    in `_X_AMZN_TRACE_ID` (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html)."""
    lambda_env("off")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    with spans.tracer().start_as_current_span("POST /signup") as request:
        job = publish(pg_db, "count-calls", {"n": 4}, queue=queue)
    before = len(spans.all)
    with caplog.at_level(logging.INFO, logger="jobstack.worker"):
        deliver(queue, entry.handler)
    assert len(spans.all) == before == 1, "only the publisher's own span"
    [line] = [r for r in caplog.records if getattr(r, "job_id", None) == str(job.id)]
    assert line.correlation_id == f"{request.get_span_context().trace_id:032x}"  # type: ignore[attr-defined]
    assert line.xray_trace_id == "1-5759e988-bd862e3fe1be46a994272793"  # type: ignore[attr-defined]
    assert not hasattr(line, "trace_id")


def test_spans_carry_no_secret_and_a_snooze_is_not_an_error(
    pg_db: DB, queue: Queue, calls: Calls, spans: Spans, lambda_env: Any
) -> None:
    """Spans leave the account (to X-Ray or a collector): an exception's message is redacted as the logs
    are, with no stack trace; a Snooze is a handler asking to run later, not a failure."""
    lambda_env()
    leaky = publish(pg_db, "count-calls", {"n": 5}, queue=queue)
    resting = publish(pg_db, "count-calls", {"n": 6}, queue=queue)

    def behave(ctx: Any) -> object:
        if ctx.payload["n"] == 5:
            raise RuntimeError("cannot reach postgresql://app:hunter2@db.internal:5432/app")
        return ctx.snooze(60)

    calls.behaviour = behave
    event = receive_event(queue)
    acknowledge(queue, event, entry.handler(event, FakeLambdaContext()))
    by_job = {s.attributes["jobstack.job.id"]: s for s in spans.named("job count-calls") if s.attributes}
    failed, snoozed = by_job[str(leaky.id)], by_job[str(resting.id)]
    exported = repr([(s.status.description, [e.attributes for e in s.events]) for s in spans.all])
    assert "hunter2" not in exported and "exception.stacktrace" not in exported
    assert failed.status.status_code is StatusCode.ERROR
    [handler] = [c for c in spans.children_of(snoozed) if c.name == "handler"]
    assert handler.status.status_code is StatusCode.UNSET and not handler.events
    assert snoozed.status.status_code is StatusCode.UNSET and snoozed.attributes["jobstack.outcome"] == "snoozed"  # type: ignore[index]
