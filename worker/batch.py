"""One SQS event: every record through worker/processing.py, then what the batch owes SQS and Lambda.

- Records returned to the queue are delayed by their backoff (ChangeMessageVisibility).
- A returned record whose receive count has reached half of maxReceiveCount is replaced by a fresh copy
  of its message before SQS's redrive can take it. SQS counts every receive toward maxReceiveCount
  (Lambda's throttled receives too, https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html),
  so without this, deliveries that never ran the handler (deferred, busy, not found, database down) would
  use up the job's attempts and SQS would dead-letter it with no reason. The other half of the count is
  headroom for throttles we never see. The copy carries the running total of deliveries; a job that
  never runs after JOB_MAX_DELIVERIES of them is dead-lettered by the worker, with the reason.
- FIFO queues: once a record of a message group is not acknowledged, every later record of that group in
  the batch is returned unrun, so order holds within the group; other groups go on.
- When the database is unreachable (or its secret unreadable) the invocation FAILS once every record is
  settled: Lambda counts a function error (the WorkerErrors alarm), and the event source mapping backs off
  instead of cycling messages toward the DLQ. Finished records are deleted first, because a failed
  invocation returns its whole batch. One record's failure never fails the batch.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from db import ConfigError, DatabaseUnavailable, mark_sent
from db.engine import redact
from db.message import JobMessage, MalformedMessage, parse_body
from worker.backoff import retry_delay
from worker.exceptions import BatchFailed
from worker.metrics import BatchMetrics
from worker.observability import LOGGER_NAME
from worker.outcomes import NOT_RUN, Outcome, RecordResult
from worker.processing import process_record
from worker.runtime import Runtime
from worker.settlements import Settlements
from worker.transport import (
    change_visibility,
    dead_letter,
    delete,
    deliveries,
    message_id,
    receive_count,
    send_fresh_copy,
)

log = logging.getLogger(LOGGER_NAME)


def process_batch(event: dict[str, Any], context: Any, runtime: Runtime) -> dict[str, list[dict[str, str]]]:
    """The Lambda response for one SQS event: the records to return to the queue.

    Raises BatchFailed (after settling every record) when the database could not be reached.
    """
    records = event.get("Records") or []
    metrics = BatchMetrics(runtime.config.service, log_level=runtime.config.log_level)
    results: list[tuple[dict[str, Any], RecordResult]] = []
    runtime.expire_old_secret()
    database_down = _database_problem(runtime) if records else None
    settlements = Settlements(runtime)
    held_groups: set[str] = set()  # FIFO: groups whose earlier record of this batch was not acknowledged
    for record in records:
        started = time.perf_counter()
        group = message_group(record)
        if database_down is not None:
            result = RecordResult(Outcome.UNAVAILABLE, message_id(record), error=database_down)
        elif group is not None and group in held_groups:
            result = held_for_order(record, group)
        else:
            result = process_record(record, context, runtime, settlements)
            if result.cause == "auth" and runtime.refresh_secret("the database refused the credentials"):
                result = process_record(record, context, runtime, settlements)  # once, with the new password
            if result.outcome is Outcome.UNAVAILABLE:
                database_down = result.error
        if group is not None and not result.acknowledged:
            held_groups.add(group)
        result.duration_ms = (time.perf_counter() - started) * 1000
        results.append((record, result))
    database_down = _settle(settlements, database_down)
    # Every outcome is final only now (the last success completes here): then requeue, log and count.
    for index, (record, result) in enumerate(results):
        results[index] = (record, _before_the_receive_limit(record, result, runtime))
        _log_outcome(results[index][1], result.duration_ms)
        metrics.record(results[index][1])
    change_visibility(
        runtime,
        [
            (r, res.visibility_seconds)
            for r, res in results
            if not res.acknowledged and res.visibility_seconds is not None
        ],
    )
    metrics.flush()
    if database_down is not None:
        delete(runtime, [r for r, res in results if res.acknowledged])
        raise BatchFailed(f"{database_down}; {len(results)} record(s) settled, the unfinished ones return to the queue")
    return {"batchItemFailures": [{"itemIdentifier": res.message_id} for _, res in results if not res.acknowledged]}


def message_group(record: dict[str, Any]) -> str | None:
    """A FIFO record's MessageGroupId (None on a standard queue)."""
    group = (record.get("attributes") or {}).get("MessageGroupId")
    return str(group) if group else None


def held_for_order(record: dict[str, Any], group: str) -> RecordResult:
    """A FIFO record behind one of its group that was not acknowledged in this batch: returned unrun, so the
    group keeps its order (its head comes back first); other groups go on (Powertools' per-group FIFO)."""
    try:  # its log line names the job like every other outcome's (a held body is parsed, not run)
        message: JobMessage | None = parse_body(str(record.get("body", "")))
    except MalformedMessage:
        message = None
    return RecordResult(
        Outcome.DEFERRED,
        message_id(record),
        job_id=message.job_id if message else None,
        job_type=message.type if message else None,
        visibility_seconds=0,  # visible at once: an invisible follower would keep the whole group locked
        error=f"held back: an earlier message of FIFO group {group!r} in this batch was not acknowledged",
    )


def _settle(settlements: Settlements, database_down: str | None) -> str | None:
    """Complete the success still held; with the database gone, return its record to the queue instead."""
    if database_down is not None:
        settlements.abandon(database_down)
        return database_down
    try:
        settlements.flush()
    except DatabaseUnavailable as err:
        return str(err)
    except Exception:  # the held record was returned to the queue with the reason; the batch goes on
        log.exception("worker error while completing the batch's last job")
    return None


def _database_problem(runtime: Runtime) -> str | None:
    """Build the database handle (reading the secret on first use); the reason if that is impossible."""
    try:
        runtime.db  # noqa: B018 - the cached property connects lazily; building it reads the secret
    except (DatabaseUnavailable, ConfigError) as err:
        return redact(str(err))
    return None


def _before_the_receive_limit(record: dict[str, Any], result: RecordResult, runtime: Runtime) -> RecordResult:
    """Requeue (or, past the delivery budget, dead-letter) a returned record before SQS's redrive takes it."""
    config = runtime.config
    if result.acknowledged or receive_count(record) < config.requeue_at_receive_count:
        return result
    total = deliveries(record)
    if result.outcome in NOT_RUN and total >= config.max_deliveries:
        result.error = f"gave up after {total} deliveries that could not run the job ({result.outcome}): {result.error}"
        return dead_letter(record, runtime, result, "undeliverable")
    if result.outcome is Outcome.NOT_FOUND and total >= config.max_receive_count:
        result.error = f"no job row after {total} deliveries: was the message sent without publish()?"
        return dead_letter(record, runtime, result, "not_found")
    delay = result.visibility_seconds
    if delay is None:  # database down or a worker error: wait as a retry would, not a hot loop
        delay = retry_delay(total, base=config.backoff_base_seconds, cap=config.backoff_max_seconds)
    result.requeued = send_fresh_copy(record, runtime, delay)
    if result.requeued and result.outcome is not Outcome.UNAVAILABLE and result.job_id is not None:
        _remember_sent(runtime, result)
    return result


def _remember_sent(runtime: Runtime, result: RecordResult) -> None:
    """Tell the sweeper the job has a message in the queue again (so it does not send another)."""
    assert result.job_id is not None
    # If this fails the copy is out anyway: at worst the sweeper sends one duplicate, which the claim absorbs.
    with contextlib.suppress(DatabaseUnavailable):
        mark_sent(runtime.db, [result.job_id])


def _log_outcome(result: RecordResult, total_ms: float) -> None:
    fields: dict[str, Any] = {
        "job_id": str(result.job_id) if result.job_id else None,
        "type": result.job_type,
        "attempt": result.attempt,
        "message_id": result.message_id,
        "outcome": result.outcome.value,
        "duration_ms": round(total_ms, 3),
    }
    if result.requeued:
        fields["requeued"] = True
    if result.error:
        fields["error"] = redact(result.error)
    quiet = (Outcome.SUCCEEDED, Outcome.DUPLICATE, Outcome.CANCELLED)
    level = logging.INFO if result.outcome in quiet else logging.WARNING
    if result.outcome in (Outcome.UNAVAILABLE, Outcome.ERROR):
        level = logging.ERROR
    log.log(level, "job outcome", extra=fields)
