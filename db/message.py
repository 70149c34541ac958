"""The SQS wire contract, camelCase as the seeds define it: `{"jobId": ..., "type": ..., "payload": {...}}`.

Encoding and parsing live together so publisher and worker can never drift apart. The job type also
travels as a message attribute, so DLQ tools and filters can read it without parsing the body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from .sqs_limits import SQS_MAX_DELAY_SECONDS

TYPE_ATTRIBUTE = "jobType"
TRACEPARENT_ATTRIBUTE = "traceparent"  # db/trace_context.py: the publisher's span, when it had one


class MalformedMessage(ValueError):
    """The body does not follow the contract; retrying cannot fix it."""


@dataclass(frozen=True)
class JobMessage:
    job_id: UUID
    type: str
    payload: dict[str, Any]
    #: The publisher's W3C trace context (db/trace_context.py), sent as a message attribute; None: none.
    traceparent: str | None = None

    def body(self) -> str:
        return json.dumps(
            {"jobId": str(self.job_id), "type": self.type, "payload": self.payload},
            separators=(",", ":"),
            # ASCII-only: SQS rejects some Unicode code points outright (U+FFFE, U+FFFF); escaped, every
            # valid JSON payload is a valid message body.
            ensure_ascii=True,
        )

    def attributes(self) -> dict[str, dict[str, str]]:
        attributes = {TYPE_ATTRIBUTE: {"DataType": "String", "StringValue": self.type}}
        if self.traceparent is not None:
            attributes[TRACEPARENT_ATTRIBUTE] = {"DataType": "String", "StringValue": self.traceparent}
        return attributes


def message_size(body: str, attributes: dict[str, dict[str, str]]) -> int:
    """Bytes SQS counts against its maximum message size: body plus each attribute's name, type and value."""
    size = len(body.encode("utf-8"))
    for name, attr in attributes.items():
        size += len(name.encode()) + len(attr["DataType"].encode()) + len(attr.get("StringValue", "").encode())
    return size


def send_arguments(
    url: str,
    body: str,
    attributes: dict[str, Any],
    *,
    group: str,
    deduplication_id: str,
    delay_seconds: int = 0,
    tenant: str | None = None,
) -> dict[str, Any]:
    """One SendMessage's arguments, for every sender (publish, the worker's copies, a redrive; a batch entry
    is these without `QueueUrl`). A FIFO queue gets the group and a deduplication id, and no per-message
    delay, which it refuses (its messages wait for their run_at in the claim instead). SQS silently drops a
    message whose deduplication id it saw in the last 5 minutes, so every copy that must arrive again
    carries an id of its own. A standard queue gets the job's tenant as its MessageGroupId, the tenant SQS fair
    queues balance by ("How Amazon SQS fair queues work": a message without one is a tenant of its own)."""
    args: dict[str, Any] = {"QueueUrl": url, "MessageBody": body, "MessageAttributes": attributes}
    if url.endswith(".fifo"):
        args.update(MessageGroupId=group, MessageDeduplicationId=deduplication_id)
        return args
    if tenant is not None:
        args["MessageGroupId"] = tenant
    if delay_seconds > 0:
        args["DelaySeconds"] = min(delay_seconds, SQS_MAX_DELAY_SECONDS)
    return args


def parse_body(body: str) -> JobMessage:
    """Parse a received body, or raise MalformedMessage naming exactly what is wrong."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as err:
        raise MalformedMessage(f"body is not JSON ({err})") from None
    if not isinstance(doc, dict):
        raise MalformedMessage("body is not a JSON object")
    missing = [key for key in ("jobId", "type") if key not in doc]
    if missing:
        raise MalformedMessage(f"body has no {' or '.join(repr(k) for k in missing)}")
    raw_id, job_type, payload = doc["jobId"], doc["type"], doc.get("payload", {})
    if not isinstance(raw_id, str):
        raise MalformedMessage("jobId must be a string UUID")
    try:
        job_id = UUID(raw_id)
    except ValueError:
        raise MalformedMessage(f"jobId {raw_id[:64]!r} is not a UUID") from None
    if not isinstance(job_type, str) or not job_type:
        raise MalformedMessage("type must be a non-empty string")
    if "\x00" in job_type:
        raise MalformedMessage("type contains the NUL character (\\u0000)")
    if not isinstance(payload, dict):
        raise MalformedMessage("payload must be a JSON object")
    return JobMessage(job_id=job_id, type=job_type, payload=payload)


def job_id_hint(body: str) -> UUID | None:
    """Best-effort job id from a body that failed to parse, so the row can be marked failed too."""
    try:
        doc = json.loads(body)
        return UUID(doc["jobId"]) if isinstance(doc, dict) and isinstance(doc.get("jobId"), str) else None
    except (ValueError, TypeError, KeyError):
        return None
