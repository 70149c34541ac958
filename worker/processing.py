"""What happens to each SQS record: parse → check time → claim → run → settle, and the batch around it.

Every path ends in exactly one of: acknowledged (deleted by the event source mapping), acknowledged after
the worker copied the message to the DLQ, or returned in `batchItemFailures` (SQS delivers it again, and
its redrive policy moves it to the DLQ after maxReceiveCount). No path drops a message silently.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import worker.jobs  # noqa: F401 - registers the built-in handlers wherever records are processed
from db import (
    ClaimOutcome,
    DatabaseUnavailable,
    InvalidPayload,
    JobStatus,
    MalformedMessage,
    UnknownJobType,
    claim_job,
    complete_job,
    fail_job,
    get_job_type,
    parse_body,
)
from db.engine import redact
from db.message import job_id_hint
from worker.backoff import retry_delay
from worker.exceptions import HandlerNotFound
from worker.observability import LOGGER_NAME, BatchMetrics, job_logger
from worker.registry import JobContext, get_handler
from worker.runtime import Runtime

log = logging.getLogger(LOGGER_NAME)
ABANDONED = "abandoned: worker did not finish"
_NO_DEADLINE_MS = 15 * 60 * 1000
_MAX_ORIGINAL_ATTRIBUTES = 5  # SQS allows 10 attributes; the DLQ copy adds 5 of its own


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"  # handler returned; row completed; message deleted
    DUPLICATE = "duplicate"  # row already completed; handler not run; message deleted
    DEAD_LETTERED = "dead_lettered"  # copied to the DLQ with the reason; message deleted
    RETRY = "retry"  # handler raised with attempts left; message back after a backoff
    BUSY = "busy"  # another live invocation holds the job; message back later
    NOT_FOUND = "not_found"  # no row yet (commit race / replica lag); message back later
    DEFERRED = "deferred"  # too little time before the deadline to start; message back at once
    UNAVAILABLE = "unavailable"  # database unreachable; message back, nothing changed
    ERROR = "error"  # the worker itself failed (e.g. DLQ unreachable); message back

    @property
    def acknowledged(self) -> bool:
        return self in (Outcome.SUCCEEDED, Outcome.DUPLICATE, Outcome.DEAD_LETTERED)


@dataclass
class RecordResult:
    outcome: Outcome
    message_id: str
    job_id: UUID | None = None
    job_type: str | None = None
    attempt: int | None = None
    error: str | None = None
    visibility_seconds: int | None = None  # set the message's visibility to this (None: leave it)
    handler_ms: float | None = None
    handler_failed: bool = False


def process_batch(event: dict[str, Any], context: Any, runtime: Runtime) -> dict[str, list[dict[str, str]]]:
    """The Lambda response for one SQS event: the records to return to the queue.

    Once the database is found unreachable, the remaining records are returned untouched instead of each
    waiting for its own connection timeout.
    """
    records = event.get("Records") or []
    metrics = BatchMetrics(runtime.config.service)
    results: list[tuple[dict[str, Any], RecordResult]] = []
    database_down: str | None = None
    for record in records:
        started = time.perf_counter()
        if database_down is not None:
            result = RecordResult(Outcome.UNAVAILABLE, _message_id(record), error=database_down)
        else:
            result = process_record(record, context, runtime)
            if result.outcome is Outcome.UNAVAILABLE:
                database_down = result.error
        _log_outcome(result, (time.perf_counter() - started) * 1000)
        _count(metrics, result)
        results.append((record, result))
    _apply_visibility(
        runtime, [(r, res.visibility_seconds) for r, res in results if res.visibility_seconds is not None]
    )
    metrics.flush()
    return {
        "batchItemFailures": [{"itemIdentifier": res.message_id} for _, res in results if not res.outcome.acknowledged]
    }


def process_record(record: dict[str, Any], context: Any, runtime: Runtime) -> RecordResult:
    message_id = _message_id(record)
    try:
        return _process(record, message_id, context, runtime)
    except DatabaseUnavailable as err:
        return RecordResult(Outcome.UNAVAILABLE, message_id, error=str(err))
    except Exception as err:  # a bug of ours must not fail the other records of the batch
        log.exception("worker error", extra={"message_id": message_id})
        return RecordResult(Outcome.ERROR, message_id, error=redact(f"{type(err).__name__}: {err}"))


def _process(record: dict[str, Any], message_id: str, context: Any, runtime: Runtime) -> RecordResult:
    config = runtime.config
    body = record.get("body") or ""
    try:
        message = parse_body(body)
    except MalformedMessage as err:
        reason = f"malformed message: {err}"
        hinted = job_id_hint(body)
        if hinted is not None:
            fail_job(runtime.db, hinted, reason)
        return _dead_letter(
            record, runtime, RecordResult(Outcome.DEAD_LETTERED, message_id, hinted, error=reason), "malformed"
        )

    base = RecordResult(Outcome.DEAD_LETTERED, message_id, message.job_id, message.type)
    try:
        job_type = get_job_type(message.type)
        handler = get_handler(message.type)
    except (UnknownJobType, HandlerNotFound) as err:
        fail_job(runtime.db, message.job_id, str(err), job_type=message.type)
        base.error = str(err)
        return _dead_letter(record, runtime, base, "unknown_type")

    needed = max(config.min_time_left, handler.min_time_left or config.min_time_left)
    remaining_ms = _remaining_ms(context)
    if remaining_ms < needed.total_seconds() * 1000:
        return RecordResult(
            Outcome.DEFERRED,
            message_id,
            message.job_id,
            message.type,
            visibility_seconds=0,
            error=f"{remaining_ms} ms left, {int(needed.total_seconds() * 1000)} ms needed to start",
        )

    receive_count = _receive_count(record)
    claim = claim_job(runtime.db, message.job_id, stale_after=config.stale_after, job_type=message.type)
    later = retry_delay(receive_count, base=config.backoff_base_seconds, cap=config.backoff_max_seconds)
    if claim.outcome is ClaimOutcome.NOT_FOUND:
        return RecordResult(Outcome.NOT_FOUND, message_id, message.job_id, message.type, visibility_seconds=later)
    if claim.outcome is ClaimOutcome.COMPLETED:
        return RecordResult(Outcome.DUPLICATE, message_id, message.job_id, message.type)
    if claim.outcome is ClaimOutcome.BUSY:
        return RecordResult(Outcome.BUSY, message_id, message.job_id, message.type, visibility_seconds=later)
    if claim.outcome is ClaimOutcome.TYPE_MISMATCH:
        assert claim.job is not None
        base.error = f"message type {message.type!r} does not match job type {claim.job.type!r}"
        fail_job(runtime.db, message.job_id, base.error)
        return _dead_letter(record, runtime, base, "type_mismatch")
    if claim.outcome is ClaimOutcome.EXHAUSTED:
        assert claim.job is not None
        base.attempt = claim.job.attempts
        if claim.job.status is JobStatus.PROCESSING:
            fail_job(runtime.db, message.job_id, ABANDONED, attempt=claim.job.attempts)
        base.error = ABANDONED if claim.job.status is JobStatus.PROCESSING else (claim.job.error or "no attempts left")
        return _dead_letter(record, runtime, base, "exhausted")

    job = claim.job
    assert job is not None
    base.attempt = job.attempts
    try:
        payload = job_type.validate(job.payload)  # the row is the source of truth, not the message's copy
    except InvalidPayload as err:
        fail_job(runtime.db, job.id, str(err), attempt=job.attempts)
        base.error = str(err)
        return _dead_letter(record, runtime, base, "invalid_payload")

    ctx = JobContext(
        job_id=job.id,
        type=job.type,
        payload=payload,
        db=runtime.db,
        log=job_logger(str(job.id), job.type, job.attempts),
        attempt=job.attempts,
        max_attempts=job.max_attempts,
        message_id=message_id,
        _remaining_ms=lambda: _remaining_ms(context),
    )
    started = time.perf_counter()
    try:
        handler.run(ctx)
    except DatabaseUnavailable:
        raise  # the row stays processing; the stale window hands it to a later invocation
    except Exception as err:
        elapsed = (time.perf_counter() - started) * 1000
        error = f"{type(err).__name__}: {err}"
        fail_job(runtime.db, job.id, error, attempt=job.attempts)
        base.error, base.handler_ms, base.handler_failed = error, elapsed, True
        if job.attempts >= job.max_attempts:
            return _dead_letter(record, runtime, base, "failed")
        base.outcome = Outcome.RETRY
        base.visibility_seconds = retry_delay(
            job.attempts, base=config.backoff_base_seconds, cap=config.backoff_max_seconds
        )
        return base
    elapsed = (time.perf_counter() - started) * 1000
    if not complete_job(runtime.db, job.id, attempt=job.attempts):
        log.warning(
            "job finished after another invocation reclaimed it; its result stands, the row is theirs",
            extra={"job_id": str(job.id), "type": job.type, "attempt": job.attempts},
        )
    base.outcome, base.handler_ms = Outcome.SUCCEEDED, elapsed
    return base


def _dead_letter(record: dict[str, Any], runtime: Runtime, result: RecordResult, kind: str) -> RecordResult:
    """Copy the message, body untouched, to the DLQ with the reason as attributes; then it may be deleted."""
    reason = (result.error or kind)[:1000]
    attributes = _original_attributes(record)
    attributes.update(
        {
            "jobstack.error": {"DataType": "String", "StringValue": reason},
            "jobstack.error-kind": {"DataType": "String", "StringValue": kind},
            "jobstack.source-message-id": {"DataType": "String", "StringValue": result.message_id},
            "jobstack.receive-count": {"DataType": "Number", "StringValue": str(_receive_count(record))},
            "jobstack.failed-at": {"DataType": "String", "StringValue": datetime.now(UTC).isoformat()},
        }
    )
    args: dict[str, Any] = {
        "QueueUrl": runtime.config.dlq_url,
        "MessageBody": record.get("body") or "(empty body)",
        "MessageAttributes": attributes,
    }
    if runtime.config.dlq_url.endswith(".fifo"):
        group = record.get("attributes", {}).get("MessageGroupId") or str(result.job_id or result.message_id)
        args.update(MessageGroupId=group, MessageDeduplicationId=result.message_id)
    try:
        runtime.sqs.send_message(**args)
    except Exception as err:
        result.outcome = Outcome.ERROR
        result.error = f"could not send to the DLQ ({type(err).__name__}); the message stays queued: {reason}"
        return result
    result.outcome = Outcome.DEAD_LETTERED
    result.error = reason
    return result


def _original_attributes(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The record's message attributes in SendMessage's shape (the event uses lowerCamel keys)."""
    out: dict[str, dict[str, Any]] = {}
    for name, attr in list((record.get("messageAttributes") or {}).items())[:_MAX_ORIGINAL_ATTRIBUTES]:
        data_type = attr.get("dataType") or attr.get("DataType") or "String"
        if "stringValue" in attr or "StringValue" in attr:
            out[name] = {"DataType": data_type, "StringValue": attr.get("stringValue", attr.get("StringValue"))}
        elif "binaryValue" in attr or "BinaryValue" in attr:
            import base64

            raw = attr.get("binaryValue", attr.get("BinaryValue"))
            out[name] = {"DataType": data_type, "BinaryValue": base64.b64decode(raw) if isinstance(raw, str) else raw}
    return out


def _apply_visibility(runtime: Runtime, changes: list[tuple[dict[str, Any], int | None]]) -> None:
    """Delay the retried messages (ChangeMessageVisibilityBatch, 10 per call). On failure they simply
    return after the queue's own visibility timeout, so errors are logged, not raised."""
    entries = [
        {"Id": str(i), "ReceiptHandle": record["receiptHandle"], "VisibilityTimeout": seconds}
        for i, (record, seconds) in enumerate(changes)
        if record.get("receiptHandle") and seconds is not None
    ]
    for start in range(0, len(entries), 10):
        chunk = entries[start : start + 10]
        try:
            response = runtime.sqs.change_message_visibility_batch(QueueUrl=runtime.config.queue_url, Entries=chunk)
            failed = response.get("Failed", [])
        except Exception as err:
            failed = [{"Id": e["Id"], "Code": type(err).__name__} for e in chunk]
        for f in failed:
            log.warning("could not delay a retried message", extra={"code": f.get("Code"), "entry": f.get("Id")})


def _log_outcome(result: RecordResult, total_ms: float) -> None:
    fields = {
        "job_id": str(result.job_id) if result.job_id else None,
        "type": result.job_type,
        "attempt": result.attempt,
        "message_id": result.message_id,
        "outcome": result.outcome.value,
        "duration_ms": round(total_ms, 3),
    }
    if result.error:
        fields["error"] = redact(result.error)
    level = logging.INFO if result.outcome in (Outcome.SUCCEEDED, Outcome.DUPLICATE) else logging.WARNING
    if result.outcome in (Outcome.UNAVAILABLE, Outcome.ERROR):
        level = logging.ERROR
    log.log(level, "job outcome", extra=fields)


def _count(metrics: BatchMetrics, result: RecordResult) -> None:
    job_type = result.job_type or "unknown"
    if result.handler_ms is not None:
        metrics.duration(job_type, result.handler_ms)
    if result.handler_failed:
        metrics.count(job_type, "failed")
    if result.outcome is Outcome.SUCCEEDED:
        metrics.count(job_type, "succeeded")
    elif result.outcome is Outcome.DEAD_LETTERED:
        metrics.count(job_type, "dead_lettered")
    elif not result.outcome.acknowledged:
        metrics.count(job_type, "retried")


def _message_id(record: dict[str, Any]) -> str:
    return str(record.get("messageId") or "unknown")


def _receive_count(record: dict[str, Any]) -> int:
    try:
        return max(int(record.get("attributes", {}).get("ApproximateReceiveCount", 1)), 1)
    except (TypeError, ValueError):
        return 1


def _remaining_ms(context: Any) -> int:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return int(getter()) if callable(getter) else _NO_DEADLINE_MS
