"""What happens to one SQS record: parse → check time → claim → run → settle.

Every path ends in exactly one outcome (worker/outcomes.py): acknowledged, acknowledged after the worker
copied the message to the DLQ with its reason, or returned to the queue. The batch around it, and what is
done with returned records near SQS's receive limit, is worker/batch.py; every SQS call is
worker/transport.py. A message that contradicts its row (another type, a garbled body) is dead-lettered
without touching the row: the row's own message may still be on its way and must find it unchanged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import worker.jobs  # noqa: F401 - registers the built-in handlers wherever records are processed
from db import (
    ClaimOutcome,
    DatabaseUnavailable,
    InvalidPayload,
    JobStatus,
    MalformedMessage,
    UnknownJobType,
    cancel_running,
    fail_job,
    get_job_type,
    parse_body,
)
from db.engine import redact
from db.message import job_id_hint
from worker.backoff import retry_delay
from worker.exceptions import HandlerNotFound
from worker.observability import LOGGER_NAME, job_logger
from worker.outcomes import ABANDONED, Outcome, RecordResult
from worker.registry import JobContext, get_handler
from worker.runtime import Runtime
from worker.settlements import Settlements
from worker.transport import dead_letter, message_id, receive_count

log = logging.getLogger(LOGGER_NAME)
_NO_DEADLINE_MS = 15 * 60 * 1000


def process_record(
    record: dict[str, Any], context: Any, runtime: Runtime, settlements: Settlements | None = None
) -> RecordResult:
    """One record. With `settlements` (the batch's), a success's completion is held for the next claim;
    without, it is settled before this returns."""
    mid = message_id(record)
    own = settlements is None
    settlements = settlements or Settlements(runtime)
    try:
        result = _process(record, mid, context, runtime, settlements)
        if own:
            settlements.flush()
        return result
    except DatabaseUnavailable as err:
        return RecordResult(Outcome.UNAVAILABLE, mid, error=str(err), cause=err.kind)
    except Exception as err:  # a bug of ours must not fail the other records of the batch
        log.exception("worker error", extra={"message_id": mid})
        return RecordResult(Outcome.ERROR, mid, error=redact(f"{type(err).__name__}: {err}"))


def _process(
    record: dict[str, Any], message_id: str, context: Any, runtime: Runtime, settlements: Settlements
) -> RecordResult:
    config = runtime.config
    body = record.get("body") or ""
    try:
        message = parse_body(body)
    except MalformedMessage as err:
        # Even if it names a job, a garbled body says nothing reliable about it: the row stays as it is.
        reason = f"malformed message: {err}"
        result = RecordResult(Outcome.DEAD_LETTERED, message_id, job_id_hint(body), error=reason)
        return dead_letter(record, runtime, result, "malformed")

    base = RecordResult(Outcome.DEAD_LETTERED, message_id, message.job_id, message.type)
    try:
        job_type = get_job_type(message.type)
        handler = get_handler(message.type)
    except (UnknownJobType, HandlerNotFound) as err:
        # The row of this type (if any) cannot run in this deployment: fail it with the reason. A row of
        # another type is somebody else's and is left alone (job_type=).
        fail_job(runtime.db, message.job_id, str(err), job_type=message.type)
        base.error = str(err)
        return dead_letter(record, runtime, base, "unknown_type")

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

    claim = settlements.claim(message.job_id, stale_after=config.stale_after, job_type=message.type)
    later = retry_delay(receive_count(record), base=config.backoff_base_seconds, cap=config.backoff_max_seconds)
    if claim.outcome is ClaimOutcome.NOT_FOUND:
        return RecordResult(Outcome.NOT_FOUND, message_id, message.job_id, message.type, visibility_seconds=later)
    if claim.outcome is ClaimOutcome.COMPLETED:
        return RecordResult(Outcome.DUPLICATE, message_id, message.job_id, message.type)
    if claim.outcome is ClaimOutcome.CANCELLED:  # acknowledged without running: an operator cancelled it
        return RecordResult(Outcome.CANCELLED, message_id, message.job_id, message.type)
    if claim.outcome is ClaimOutcome.BUSY:
        return RecordResult(Outcome.BUSY, message_id, message.job_id, message.type, visibility_seconds=later)
    if claim.outcome is ClaimOutcome.TYPE_MISMATCH:
        assert claim.job is not None
        base.error = f"message type {message.type!r} does not match job type {claim.job.type!r}; the job is untouched"
        return dead_letter(record, runtime, base, "type_mismatch")
    if claim.outcome is ClaimOutcome.EXHAUSTED:
        assert claim.job is not None
        base.attempt = claim.job.attempts
        if claim.job.status is JobStatus.PROCESSING:
            fail_job(runtime.db, message.job_id, ABANDONED, attempt=claim.job.attempts)
        base.error = ABANDONED if claim.job.status is JobStatus.PROCESSING else (claim.job.error or "no attempts left")
        return dead_letter(record, runtime, base, "exhausted")

    job = claim.job
    assert job is not None
    base.attempt = job.attempts
    try:
        payload = job_type.validate(job.payload)  # the row is the source of truth, not the message's copy
    except InvalidPayload as err:
        fail_job(runtime.db, job.id, str(err), attempt=job.attempts)
        base.error = str(err)
        return dead_letter(record, runtime, base, "invalid_payload")

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
    except Exception as err:  # ConnectionBusy (the handler deadlocked its own connection) lands here too
        elapsed = (time.perf_counter() - started) * 1000
        error = f"{type(err).__name__}: {err}"
        base.error, base.handler_ms, base.handler_failed = error, elapsed, True
        if cancel_running(runtime.db, job.id, attempt=job.attempts):
            base.outcome = Outcome.CANCELLED  # asked to stop, and it stopped: not retried
            return base
        fail_job(runtime.db, job.id, error, attempt=job.attempts)
        if job.attempts >= job.max_attempts:
            return dead_letter(record, runtime, base, "failed")
        base.outcome = Outcome.RETRY
        base.visibility_seconds = retry_delay(
            job.attempts, base=config.backoff_base_seconds, cap=config.backoff_max_seconds
        )
        return base
    base.outcome, base.handler_ms = Outcome.SUCCEEDED, (time.perf_counter() - started) * 1000
    settlements.hold(job, base)  # completed with the next claim, or flushed alone
    return base


def _remaining_ms(context: Any) -> int:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return int(getter()) if callable(getter) else _NO_DEADLINE_MS
