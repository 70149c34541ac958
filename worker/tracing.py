"""A job's spans, through the OpenTelemetry API only: users bring the SDK and exporter (the ADOT layer with
`tracing: "otel"`, or their own OTLP setup), and the worker never imports an SDK.

Per record, `job <type>` (kind CONSUMER) with children `claim`, `handler` and `completion`. It links to the
publisher's span (the message's `traceparent`, db/trace_context.py) and, when no span is current (no
Lambda instrumentation), continues the publisher's trace as its child too, so the job shows under the
request that published it. With an invocation span (ADOT's instrumentation), it is that span's child and
keeps the link. A handler's own spans nest under `handler`.

Nothing is paid where nothing records: with `tracing: "off"`, without the API, or with the API but no SDK
configured (its proxy provider), no span object is made; the tracer and the invocation's X-Ray id are looked
up once per batch (`BatchTracing`), not per record.

Log lines of a job carry `JobTrace.fields` the way Powertools Logger users read them: `xray_trace_id`
(the invocation's X-Ray trace, from Lambda's `_X_AMZN_TRACE_ID`), `correlation_id` (the publisher's trace
id) and `trace_id` (the job span's, when one records).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from db import redact
from db.claiming import Invocation
from db.trace_context import TRACEPARENT_ATTRIBUTE, trace_id_of, valid_traceparent
from worker.observability import LOGGER_NAME, BoundLogger
from worker.outcomes import Decision, Outcome

log = logging.getLogger(LOGGER_NAME)
TRACER_NAME = "jobstack.worker"
#: Lambda's per-invocation X-Ray trace header: Root=1-...;Parent=...;Sampled=1
XRAY_TRACE_VARIABLE = "_X_AMZN_TRACE_ID"
_FAILED = (Outcome.DEAD_LETTERED, Outcome.ERROR, Outcome.UNAVAILABLE)


def xray_trace_id(environ: Mapping[str, str] | None = None) -> str | None:
    """The invocation's X-Ray trace id (`Root=` of `_X_AMZN_TRACE_ID`), or None outside an X-Ray trace."""
    header = (os.environ if environ is None else environ).get(XRAY_TRACE_VARIABLE, "")
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "Root" and value:
            return value
    return None


@dataclass(eq=False)  # one per record, compared by identity (and a default where a record has none)
class JobTrace:
    """One record's span (None: nothing records) and the fields its log lines carry."""

    span: Any = None
    tracer: Any = None
    fields: dict[str, str] = field(default_factory=dict)
    #: When the record's work ended (its decision, or its completion if that came later): the span's end,
    #: though the batch ends every span only once the outcomes are final.
    ended_ns: int | None = None

    def logger(self, job_id: str, job_type: str, attempt: int) -> logging.LoggerAdapter[logging.Logger]:
        """A handler's logger (`ctx.log`): every line carries the job and this trace's ids."""
        fields: dict[str, object] = {"job_id": job_id, "type": job_type, "attempt": attempt, **self.fields}
        return BoundLogger(logging.getLogger(LOGGER_NAME), fields)

    def mark_ended(self, at_ns: int | None = None) -> None:
        if self.span is not None:
            self.ended_ns = max(self.ended_ns or 0, at_ns or time.time_ns())

    @contextlib.contextmanager
    def step(self, name: str, *, expected: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
        """A child span around a step, current while it runs (a handler's own spans nest under it). An
        exception is recorded on it as an error and goes on, unless it is `expected` (a Snooze is how a
        handler asks to run later, not a failure)."""
        if self.span is None:
            yield
            return
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        child = self.tracer.start_span(name, context=trace.set_span_in_context(self.span))
        with trace.use_span(child, end_on_exit=True, record_exception=False, set_status_on_exception=False):
            try:
                yield
            except expected:
                raise
            except BaseException as err:
                # OpenTelemetry's exception event, its message redacted as the logs are (a driver's error can
                # quote a connection URL); no stack trace: spans leave the account.
                message = redact(str(err))[:1024]
                child.add_event("exception", {"exception.type": type(err).__name__, "exception.message": message})
                child.set_status(Status(StatusCode.ERROR, f"{type(err).__name__}: {message}"[:512]))
                raise

    def timed_step(self, name: str, start_ns: int, end_ns: int, *, error: str | None = None) -> None:
        """A child span for a step that ran elsewhere: a held completion riding on a later claim, or one
        statement completing a whole batch."""
        if self.span is None:
            return
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        child = self.tracer.start_span(name, context=trace.set_span_in_context(self.span), start_time=start_ns)
        if error is not None:
            child.set_status(Status(StatusCode.ERROR, error))
        child.end(end_time=end_ns)
        self.mark_ended(end_ns)

    def report(self, decision: Decision, duration_ms: float) -> None:
        """What became of the record, once final: its `job outcome` log line, and the end of its span."""
        log_outcome(decision, duration_ms, self.fields)
        self.finish(decision)

    def finish(self, decision: Decision) -> None:
        """End the job's span with what became of the record."""
        if self.span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        attributes: dict[str, Any] = {"jobstack.outcome": decision.outcome.value}
        if decision.job_id is not None:
            attributes["jobstack.job.id"] = str(decision.job_id)
        if decision.attempt is not None:
            attributes["jobstack.job.attempt"] = decision.attempt
        if decision.queue_wait_ms is not None:
            attributes["jobstack.queue_wait_ms"] = round(decision.queue_wait_ms, 3)
        self.span.set_attributes(attributes)
        if decision.outcome in _FAILED or decision.handler_failed:
            self.span.set_status(Status(StatusCode.ERROR, redact(decision.error or decision.outcome.value)[:512]))
        self.span.end(end_time=self.ended_ns)
        self.span = None


NO_TRACE = JobTrace()


def _tracer(mode: str) -> Any:
    """The API's tracer, or None when nothing would record: tracing off, no API, or no SDK configured."""
    if mode == "off":
        return None
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider.get_tracer(TRACER_NAME)


@dataclass(frozen=True)
class BatchTracing:
    """What every record of one invocation shares, looked up once per batch rather than per record: the
    tracer (None when nothing records), the invocation's X-Ray trace id and the queue's name."""

    tracer: Any
    xray_trace_id: str | None
    queue_name: str | None

    @classmethod
    def of(cls, mode: str, queue_name: str | None = None) -> BatchTracing:
        return cls(_tracer(mode), xray_trace_id(), queue_name)

    def invocation(self, context: Any) -> Invocation:
        """The invocation as its claims name it on each job's row and in its attempt history: Lambda's request
        id (the key to its log lines) and its X-Ray trace id."""
        return Invocation(getattr(context, "aws_request_id", None), self.xray_trace_id)

    def start_job(self, record: Any) -> JobTrace:
        """The span of one record (`worker.record.SqsRecord`), started now; NO_TRACE when nothing records
        and the record carries no trace ids to log."""
        traceparent = _traceparent(record.message_attributes)
        pairs = (("xray_trace_id", self.xray_trace_id), ("correlation_id", trace_id_of(traceparent)))
        fields = {k: v for k, v in pairs if v}
        if self.tracer is None:
            return JobTrace(fields=fields) if fields else NO_TRACE
        from opentelemetry import trace
        from opentelemetry.trace import Link, SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent, links = None, []
        if traceparent is not None:
            published = TraceContextTextMapPropagator().extract({TRACEPARENT_ATTRIBUTE: traceparent})
            links = [Link(trace.get_current_span(published).get_span_context())]
            if not trace.get_current_span().get_span_context().is_valid:
                parent = published  # no invocation span: the job continues the publisher's trace
        attributes: dict[str, Any] = {"messaging.system": "aws_sqs", "messaging.message.id": record.message_id}
        if self.queue_name:
            attributes["messaging.destination.name"] = self.queue_name
        name, message = "job", record.message  # the body was parsed with the record: the span names its job
        if message is not None:
            name = f"job {message.type}"
            attributes.update({"jobstack.job.type": message.type, "jobstack.job.id": str(message.job_id)})
        span = self.tracer.start_span(
            name, context=parent, kind=SpanKind.CONSUMER, links=links, attributes=attributes,
            start_time=time.time_ns(),
        )  # fmt: skip
        fields["trace_id"] = format(span.get_span_context().trace_id, "032x")
        return JobTrace(span, self.tracer, fields)


def _traceparent(attributes: Mapping[str, Mapping[str, Any]]) -> str | None:
    attribute = attributes.get(TRACEPARENT_ATTRIBUTE) or {}
    value = attribute.get("stringValue", attribute.get("StringValue"))
    return value if valid_traceparent(value) else None


def log_outcome(decision: Decision, duration_ms: float, trace_fields: dict[str, str]) -> None:
    """The record's one `job outcome` line: its job, attempt, outcome and error, with the trace's ids."""
    fields: dict[str, Any] = {
        "job_id": str(decision.job_id) if decision.job_id else None,
        "type": decision.job_type,
        "attempt": decision.attempt,
        "message_id": decision.message_id,
        "outcome": decision.outcome.value,
        "duration_ms": round(duration_ms, 3),
        **trace_fields,
    }
    if decision.queue_wait_ms is not None:
        fields["queue_wait_ms"] = round(decision.queue_wait_ms, 3)
    if decision.requeued:
        fields["requeued"] = True
    if decision.error:
        fields["error"] = decision.error  # redacted where it was made (and the log filter masks any slip)
    quiet = (
        Outcome.SUCCEEDED,
        Outcome.DUPLICATE,
        Outcome.CANCELLED,
        Outcome.SNOOZED,
        Outcome.THROTTLED,
        Outcome.WAITING,
    )
    level = logging.INFO if decision.outcome in quiet else logging.WARNING
    if decision.outcome in (Outcome.UNAVAILABLE, Outcome.ERROR):
        level = logging.ERROR
    log.log(level, "job outcome", extra=fields)
