"""Every SQS call the worker makes: for a batch, dead-letter copies, fresh copies, visibility, deletes; for
the sweeper, reading and deleting the scheduled fires that failed.

Kept apart from the state machine (worker/processing.py) so the rules SQS enforces, and moto does not
(attribute characters and sizes, 10 attributes per message, no per-message delay on FIFO queues), live in
one place. The event uses lowerCamel keys; SendMessage wants UpperCamel: converted here.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from typing import Any

from db.message import message_size
from db.publish import SQS_MAX_DELAY_SECONDS, SQS_MAX_MESSAGE_BYTES
from worker.observability import LOGGER_NAME
from worker.outcomes import Outcome, RecordResult
from worker.runtime import Runtime
from worker.sqs_text import sqs_safe

log = logging.getLogger(LOGGER_NAME)
OURS = "jobstack."
DELIVERIES_ATTRIBUTE = "jobstack.deliveries"
_MAX_ATTRIBUTES = 10  # SQS's limit per message
_OUR_DLQ_ATTRIBUTES = 5
#: The reason travels in at most this many bytes: with the other four attributes it stays inside the
#: DLQ_ATTRIBUTE_RESERVE the publisher keeps free in every message.
MAX_REASON_BYTES = 1024


def message_id(record: dict[str, Any]) -> str:
    return str(record.get("messageId") or "unknown")


def receive_count(record: dict[str, Any]) -> int:
    try:
        return max(int(record.get("attributes", {}).get("ApproximateReceiveCount", 1)), 1)
    except (TypeError, ValueError):
        return 1


def deliveries(record: dict[str, Any]) -> int:
    """Receives of this job's message across the fresh copies that replaced it, this one included."""
    attr = (record.get("messageAttributes") or {}).get(DELIVERIES_ATTRIBUTE) or {}
    try:
        earlier = int(attr.get("stringValue", attr.get("StringValue", 0)))
    except (TypeError, ValueError):
        earlier = 0
    return max(earlier, 0) + receive_count(record)


def dead_letter(record: dict[str, Any], runtime: Runtime, result: RecordResult, kind: str) -> RecordResult:
    """Copy the message, body untouched, to the DLQ with the reason as attributes; then it may be deleted.

    The reason is made SQS-safe and cut to MAX_REASON_BYTES, and the record's own attributes are dropped
    (last first) if the copy would otherwise exceed the queue's size limit: a dead letter that SQS refuses
    would leave the message cycling until redrive took it without any reason.
    """
    reason = sqs_safe(result.error or kind, MAX_REASON_BYTES)
    ours = {
        "jobstack.error": {"DataType": "String", "StringValue": reason},
        "jobstack.error-kind": {"DataType": "String", "StringValue": kind},
        "jobstack.source-message-id": {"DataType": "String", "StringValue": sqs_safe(result.message_id, 256)},
        "jobstack.receive-count": {"DataType": "Number", "StringValue": str(deliveries(record))},
        "jobstack.failed-at": {"DataType": "String", "StringValue": datetime.now(UTC).isoformat()},
    }
    body = record.get("body") or "(empty body)"
    attributes = _fit(body, original_attributes(record, _MAX_ATTRIBUTES - _OUR_DLQ_ATTRIBUTES), ours)
    args: dict[str, Any] = {"QueueUrl": runtime.config.dlq_url, "MessageBody": body, "MessageAttributes": attributes}
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


def send_fresh_copy(record: dict[str, Any], runtime: Runtime, delay_seconds: int) -> bool:
    """Send the record's message again as a new message (receive count 0) carrying the running total of
    deliveries; True if SQS accepted it, after which the original may be acknowledged."""
    attributes = {
        k: v for k, v in original_attributes(record, _MAX_ATTRIBUTES - 1).items() if k != DELIVERIES_ATTRIBUTE
    }
    attributes[DELIVERIES_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(deliveries(record))}
    url = runtime.config.queue_url
    args: dict[str, Any] = {"QueueUrl": url, "MessageBody": record.get("body") or "", "MessageAttributes": attributes}
    if url.endswith(".fifo"):  # FIFO queues take no per-message delay; a new deduplication id per copy
        group = record.get("attributes", {}).get("MessageGroupId") or message_id(record)
        args.update(MessageGroupId=group, MessageDeduplicationId=f"copy-{message_id(record)}")
    elif delay_seconds > 0:
        args["DelaySeconds"] = min(delay_seconds, SQS_MAX_DELAY_SECONDS)
    try:
        runtime.sqs.send_message(**args)
    except Exception as err:
        log.warning(
            "could not replace a message near its receive limit; SQS's redrive may take it",
            extra={"message_id": message_id(record), "code": type(err).__name__},
        )
        return False
    return True


def original_attributes(record: dict[str, Any], limit: int) -> dict[str, dict[str, Any]]:
    """The record's message attributes in SendMessage's shape, at most `limit`."""
    out: dict[str, dict[str, Any]] = {}
    for name, attr in (record.get("messageAttributes") or {}).items():
        if len(out) == limit:
            break
        data_type = attr.get("dataType") or attr.get("DataType") or "String"
        if "stringValue" in attr or "StringValue" in attr:
            out[name] = {"DataType": data_type, "StringValue": attr.get("stringValue", attr.get("StringValue"))}
        elif "binaryValue" in attr or "BinaryValue" in attr:
            raw = attr.get("binaryValue", attr.get("BinaryValue"))
            out[name] = {"DataType": data_type, "BinaryValue": base64.b64decode(raw) if isinstance(raw, str) else raw}
    return out


def change_visibility(runtime: Runtime, changes: list[tuple[dict[str, Any], int]]) -> None:
    """Delay the returned messages (ChangeMessageVisibilityBatch, 10 per call). On failure they simply
    return after the queue's own visibility timeout, so errors are logged, not raised."""
    entries = [
        {"Id": str(i), "ReceiptHandle": record["receiptHandle"], "VisibilityTimeout": seconds}
        for i, (record, seconds) in enumerate(changes)
        if record.get("receiptHandle")
    ]
    for chunk in _tens(entries):
        try:
            response = runtime.sqs.change_message_visibility_batch(QueueUrl=runtime.config.queue_url, Entries=chunk)
            failed = response.get("Failed", [])
        except Exception as err:
            failed = [{"Id": e["Id"], "Code": type(err).__name__} for e in chunk]
        for f in failed:
            log.warning("could not delay a returned message", extra={"code": f.get("Code"), "entry": f.get("Id")})


def delete(runtime: Runtime, records: list[dict[str, Any]]) -> None:
    """Delete acknowledged records ourselves: needed when the invocation is about to fail, since Lambda then
    returns the whole batch, finished records included. A failed delete only means a duplicate delivery."""
    entries = [
        {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(records) if r.get("receiptHandle")
    ]
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
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=visibility_seconds, WaitTimeSeconds=0
    )
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
