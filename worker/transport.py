"""Every SQS call the worker makes, and nothing else: for a batch, the dead letters and fresh copies
worker/processing.py decided (`carry_out`), visibility changes and deletes, and the messages of jobs its
completions released (a group's callback, a chain's next step) or its tenants' freed slots released (their
parked jobs, db/tenant_turns.py); for the sweeper, reading and deleting the scheduled fires that failed.

The rules SQS enforces, and moto does not (attribute characters and sizes, 10 attributes per message, no
per-message delay on FIFO queues), live here. SQS applies the message body's character rules to String
attribute values too: only #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD and #x10000-#x10FFFF are allowed, and
anything else rejects the whole SendMessage ("Invalid characters found",
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html). A dead-letter
reason quotes a handler's exception and a message's own fields, so it can hold any of them: a refused DLQ
send would loop the message until SQS's redrive dropped the reason (`sqs_safe`).

The event uses lowerCamel keys; SendMessage wants UpperCamel: converted here. A call SQS refuses is
reported to the caller (or logged where a failure only delays a message), never raised into the batch.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from db.exceptions import DatabaseUnavailable
from db.message import message_size, send_arguments
from db.relay import mark_sent
from db.sqs_limits import SQS_MAX_MESSAGE_BYTES
from worker.contract import (
    DEAD_LETTER_FAILED_AT,
    DEAD_LETTER_KIND,
    DEAD_LETTER_REASON,
    DEAD_LETTER_RECEIVE_COUNT,
    DEAD_LETTER_SOURCE_MESSAGE,
    DELIVERIES_ATTRIBUTE,
    DeadLetterKind,
)
from worker.observability import LOGGER_NAME
from worker.outcomes import Decision, Outcome
from worker.record import SqsRecord
from worker.runtime import Runtime

if TYPE_CHECKING:  # a tenant-limited type's plan loads it; a plain worker never does
    from db.claiming.tenant_gate import TenantLimit

log = logging.getLogger(LOGGER_NAME)
_MAX_ATTRIBUTES = 10  # SQS's limit per message
_OUR_DLQ_ATTRIBUTES = 5
#: The reason travels in at most this many bytes: with the other four attributes it stays inside the
#: DLQ_ATTRIBUTE_RESERVE the publisher keeps free in every message.
MAX_REASON_BYTES = 1024
REPLACEMENT = "\ufffd"


@functools.cache
def _not_allowed() -> re.Pattern[str]:
    """Compiled on first use (a dead letter), not at import: this character class costs 3.5 ms to compile."""
    return re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def sqs_safe(text: str, max_bytes: int) -> str:
    """`text` with every character SQS refuses replaced by U+FFFD, cut to at most `max_bytes` of UTF-8
    (never in the middle of a character), with "…" marking a cut."""
    clean = _not_allowed().sub(REPLACEMENT, text)
    encoded = clean.encode("utf-8")
    if len(encoded) <= max_bytes:
        return clean
    marker = "…"
    budget = max(max_bytes - len(marker.encode("utf-8")), 0)
    return encoded[:budget].decode("utf-8", errors="ignore") + marker


@dataclass(frozen=True)
class DeadLetterSent:
    """What a dead letter carried as its reason (SQS-safe, cut), and why SQS refused it (None: it is in)."""

    reason: str
    refused: str | None = None


def carry_out(runtime: Runtime, record: SqsRecord, decision: Decision) -> Decision:
    """What SQS must do for `decision` (a dead letter, a fresh copy), done at once, in record order (a FIFO
    group's hold sees what really happened); the decision as it turned out."""
    if decision.dead_letter is not None and not decision.requeued:
        sent = dead_letter(runtime, record, decision.dead_letter, decision.error, decision.job_id)
        if sent.refused is not None:
            error = f"could not send to the DLQ ({sent.refused}); the message stays queued: {sent.reason}"
            return replace(decision, outcome=Outcome.ERROR, error=error, dead_letter=None)
        return replace(decision, error=sent.reason, dead_letter=None)
    if decision.requeue_after is not None and not decision.requeued:
        if not send_fresh_copy(runtime, record, decision.requeue_after):
            return replace(decision, requeue_after=None)
        if decision.outcome is not Outcome.UNAVAILABLE and decision.job_id is not None:
            # The sweeper must know the job has a message in the queue again (so it does not send another).
            # If this fails the copy is out anyway: at worst the sweeper sends a duplicate the claim absorbs.
            with contextlib.suppress(DatabaseUnavailable):
                mark_sent(runtime.db, [decision.job_id])
        return replace(decision, requeue_after=None, requeued=True)
    return decision


def dead_letter(
    runtime: Runtime, record: SqsRecord, kind: DeadLetterKind, error: str | None, job_id: object = None
) -> DeadLetterSent:
    """Copy the message, body untouched, to the DLQ with the reason as attributes; then it may be deleted.

    The reason is made SQS-safe and cut to MAX_REASON_BYTES, and the record's own attributes are dropped
    (last first) if the copy would otherwise exceed the queue's size limit: a dead letter that SQS refuses
    would leave the message cycling until redrive took it without any reason.
    """
    reason = sqs_safe(error or kind, MAX_REASON_BYTES)
    ours = {
        DEAD_LETTER_REASON: {"DataType": "String", "StringValue": reason},
        DEAD_LETTER_KIND: {"DataType": "String", "StringValue": str(kind)},
        DEAD_LETTER_SOURCE_MESSAGE: {"DataType": "String", "StringValue": sqs_safe(record.message_id, 256)},
        DEAD_LETTER_RECEIVE_COUNT: {"DataType": "Number", "StringValue": str(record.deliveries)},
        DEAD_LETTER_FAILED_AT: {"DataType": "String", "StringValue": datetime.now(UTC).isoformat()},
    }
    body = record.body or "(empty body)"
    attributes = _fit(body, original_attributes(record, _MAX_ATTRIBUTES - _OUR_DLQ_ATTRIBUTES), ours)
    group = record.group or str(job_id or record.message_id)
    args = send_arguments(
        runtime.config.dlq_url, body, attributes, group=group, deduplication_id=record.message_id, tenant=record.tenant
    )
    try:
        runtime.sqs.send_message(**args)
    except Exception as err:
        return DeadLetterSent(reason, type(err).__name__)
    return DeadLetterSent(reason)


def send_fresh_copy(runtime: Runtime, record: SqsRecord, delay_seconds: int) -> bool:
    """Send the record's message again as a new message (receive count 0) carrying the running total of
    deliveries; True if SQS accepted it, after which the original may be acknowledged."""
    attributes = {
        k: v for k, v in original_attributes(record, _MAX_ATTRIBUTES - 1).items() if k != DELIVERIES_ATTRIBUTE
    }
    attributes[DELIVERIES_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(record.deliveries)}
    args = send_arguments(
        runtime.config.queue_url,
        record.body,
        attributes,
        group=record.group or record.message_id,
        deduplication_id=f"copy-{record.message_id}",  # a new one per copy
        delay_seconds=delay_seconds,
        tenant=record.tenant,  # a standard queue's: the tenant SQS fair queues balance by, kept by the copy
    )
    try:
        runtime.sqs.send_message(**args)
    except Exception as err:
        log.warning(
            "could not replace a message near its receive limit; SQS's redrive may take it",
            extra={"message_id": record.message_id, "code": type(err).__name__},
        )
        return False
    return True


def send_released(
    runtime: Runtime, job_ids: list[UUID], turns: Sequence[tuple[TenantLimit, str]] = ()
) -> dict[UUID, str]:
    """Send the messages of jobs made pending by this batch (each to its type's pool queue) and record the
    sends (db.publishing.send_released); the jobs not sent, with why: the sweeper's outbox relay sends them after
    their unsent window. `turns`: the tenants whose jobs this batch ran, each once: their free slots release
    their parked jobs first (db/tenant_turns.py), sent with the rest. Never raises."""
    job_ids = [*job_ids, *_released_turns(runtime, turns)]
    if not job_ids:
        return {}
    from db.publishing import send_released as send_released_jobs  # publishing's modules: only when jobs were released

    try:
        sent, failures = send_released_jobs(runtime.db, job_ids, queue=runtime.config.destination(runtime.sqs))
    except DatabaseUnavailable as err:
        log.warning("released jobs not sent; the sweeper will send them", extra={"error": str(err)})
        return {job_id: str(err) for job_id in job_ids}
    for job_id, reason in failures.items():
        log.warning("released job not sent; the sweeper will send it", extra={"job_id": str(job_id), "code": reason})
    if sent:
        log.info("released jobs sent", extra={"job_ids": [str(i) for i in sent[:20]], "count": len(sent)})
    return failures


def _released_turns(runtime: Runtime, turns: Sequence[tuple[TenantLimit, str]]) -> list[UUID]:
    """Each tenant's parked jobs its free slots make room for (one short transaction per tenant and limit); a
    failure is logged, and the sweeper releases what a batch could not."""
    if not turns:
        return []
    from db.claiming.tenant_gate import release_turns  # only a batch that ran a tenant-limited job loads it

    config, released = runtime.config, list[UUID]()
    for limit, tenant in sorted(set(turns), key=lambda t: (t[0].name, t[1])):
        try:
            released += release_turns(
                runtime.db, limit, tenant, stale_after=config.stale_after,
                silent_after=config.silent_after or config.stale_after,
            )  # fmt: skip
        except DatabaseUnavailable as err:
            extra = {"tenant": tenant, "limit": limit.name, "error": str(err)}
            log.warning("tenant's turns not released; the sweeper will", extra=extra)
    return released


def original_attributes(record: SqsRecord, limit: int) -> dict[str, dict[str, Any]]:
    """The record's message attributes in SendMessage's shape, at most `limit`."""
    out: dict[str, dict[str, Any]] = {}
    for name, attr in record.message_attributes.items():
        if len(out) == limit:
            break
        data_type = attr.get("dataType") or attr.get("DataType") or "String"
        if "stringValue" in attr or "StringValue" in attr:
            out[name] = {"DataType": data_type, "StringValue": attr.get("stringValue", attr.get("StringValue"))}
        elif "binaryValue" in attr or "BinaryValue" in attr:
            raw = attr.get("binaryValue", attr.get("BinaryValue"))
            out[name] = {"DataType": data_type, "BinaryValue": base64.b64decode(raw) if isinstance(raw, str) else raw}
    return out


def change_visibility(runtime: Runtime, changes: list[tuple[SqsRecord, int]]) -> None:
    """Delay the returned messages (ChangeMessageVisibilityBatch, 10 per call). On failure they simply
    return after the queue's own visibility timeout, so errors are logged, not raised."""
    entries = [
        {"Id": str(i), "ReceiptHandle": record.receipt_handle, "VisibilityTimeout": seconds}
        for i, (record, seconds) in enumerate(changes)
        if record.receipt_handle
    ]
    for chunk in _tens(entries):
        try:
            response = runtime.sqs.change_message_visibility_batch(QueueUrl=runtime.config.queue_url, Entries=chunk)
            failed = response.get("Failed", [])
        except Exception as err:
            failed = [{"Id": e["Id"], "Code": type(err).__name__} for e in chunk]
        for f in failed:
            log.warning("could not delay a returned message", extra={"code": f.get("Code"), "entry": f.get("Id")})


def delete(runtime: Runtime, records: list[SqsRecord]) -> None:
    """Delete acknowledged records ourselves: needed when the invocation is about to fail, since Lambda then
    returns the whole batch, finished records included. A failed delete only means a duplicate delivery."""
    entries = [{"Id": str(i), "ReceiptHandle": r.receipt_handle} for i, r in enumerate(records) if r.receipt_handle]
    for chunk in _tens(entries):
        try:
            runtime.sqs.delete_message_batch(QueueUrl=runtime.config.queue_url, Entries=chunk)
        except Exception as err:
            log.warning(
                "could not delete finished messages; they will come back as duplicates",
                extra={"code": type(err).__name__},
            )


def receive_failed_fires(sqs: Any, url: str, *, visibility_seconds: int) -> list[dict[str, Any]]:
    """Up to 10 messages of the ScheduleFailures queue, hidden for `visibility_seconds` while they are replayed
    (one that is not deleted comes back at the next sweep). No long poll: the sweeper only drains."""
    response = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=visibility_seconds, WaitTimeSeconds=0,
        MessageAttributeNames=["All"],  # Scheduler's dead letters say in them whether the body was truncated
    )  # fmt: skip
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


def delete_failed_fire(sqs: Any, url: str, receipt_handle: str) -> None:
    sqs.delete_message(QueueUrl=url, ReceiptHandle=receipt_handle)


def release_failed_fires(sqs: Any, url: str, receipt_handles: list[str]) -> None:
    """Make fires that still fail visible again, for the next sweep. A failure here only delays them until
    their visibility timeout ends, so it is logged, not raised."""
    entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(receipt_handles)]
    for chunk in _tens(entries):
        try:
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=chunk)
        except Exception as err:
            log.warning("failed fires stay hidden until their visibility timeout", extra={"code": type(err).__name__})


def _fit(body: str, originals: dict[str, dict[str, Any]], ours: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Our attributes plus as many of the originals as the message size allows (ours win on a name clash)."""
    kept = {k: v for k, v in originals.items() if k not in ours}
    while kept and _size(body, kept | ours) > SQS_MAX_MESSAGE_BYTES:
        kept.popitem()
    return kept | ours


def _size(body: str, attributes: dict[str, dict[str, Any]]) -> int:
    strings = {k: v for k, v in attributes.items() if "StringValue" in v}
    binary = sum(
        len(k) + len(v["DataType"]) + len(v["BinaryValue"]) for k, v in attributes.items() if "BinaryValue" in v
    )
    return message_size(body, strings) + binary


def _tens(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [entries[i : i + 10] for i in range(0, len(entries), 10)]
