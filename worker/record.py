"""One SQS record as the worker reads it, built once when the batch starts on it.

Lambda's event is a dict in lowerCamel keys, and what the worker needs from it (the receive count, the
deliveries of earlier copies, the FIFO group, the job message in its body) was read in several places.
`SqsRecord` reads each once, the way Powertools' `SQSRecord` wraps the event; it is frozen, so nothing
downstream can change what was delivered. The body is parsed here, once: the batch's claim, a FIFO hold
and the decision all read `message` (or, for a garbled body, `malformed`: what is wrong with it). Reading
only: the SQS calls are worker/transport.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from uuid import UUID

from db import JobMessage, MalformedMessage, job_id_hint, parse_body
from worker.contract import DELIVERIES_ATTRIBUTE


@dataclass(frozen=True, slots=True)
class SqsRecord:
    message_id: str
    body: str
    #: SQS's ApproximateReceiveCount of this message (at least 1).
    receive_count: int
    #: Receives of this job's message across the fresh copies that replaced it, this one included.
    deliveries: int
    #: The FIFO MessageGroupId (None on a standard queue): the order the batch keeps.
    group: str | None
    receipt_handle: str | None
    #: The message attributes in the event's shape (`stringValue`, `dataType`).
    message_attributes: Mapping[str, Mapping[str, Any]]
    #: The job message its body holds (None: the body is garbled, `malformed` says how).
    message: JobMessage | None = None
    malformed: str | None = None
    #: A garbled body's job id, if one can be read from it at all (a hint, never a claim).
    job_id_hint: UUID | None = None
    #: A standard queue's MessageGroupId: the job's tenant (SQS fair queues), which orders nothing; every copy
    #: the worker sends keeps it.
    tenant: str | None = None

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> SqsRecord:
        attributes = record.get("attributes") or {}
        message_attributes = record.get("messageAttributes") or {}
        received = _receive_count(attributes)
        deliveries = _earlier_deliveries(message_attributes) + received
        # SQS puts MessageGroupId on both kinds of queue: a FIFO queue's is the order to keep, a standard
        # queue's the tenant (fair queues). The record says which by its queue's ARN (a FIFO queue's name ends in
        # .fifo); a record built without one (a tool, a test) is taken as FIFO when it has a group, as before.
        group_id = attributes.get("MessageGroupId")
        arn = str(record.get("eventSourceARN") or "")
        fifo = arn.endswith(".fifo") if arn else group_id is not None
        body = str(record.get("body") or "")
        message, malformed, hint = None, None, None
        try:
            message = parse_body(body)
        except MalformedMessage as err:
            malformed, hint = str(err), job_id_hint(body)
        return cls(
            message_id=str(record.get("messageId") or "unknown"),
            body=body,
            receive_count=received,
            deliveries=deliveries,
            group=str(group_id) if group_id and fifo else None,
            receipt_handle=record.get("receiptHandle") or None,
            message_attributes=MappingProxyType(dict(message_attributes)),
            message=message,
            malformed=malformed,
            job_id_hint=hint,
            tenant=str(group_id) if group_id and not fifo else None,
        )


def _receive_count(attributes: Mapping[str, Any]) -> int:
    try:
        return max(int(attributes.get("ApproximateReceiveCount", 1)), 1)
    except (TypeError, ValueError):
        return 1


def _earlier_deliveries(message_attributes: Mapping[str, Any]) -> int:
    attr = message_attributes.get(DELIVERIES_ATTRIBUTE) or {}
    try:
        return max(int(attr.get("stringValue", attr.get("StringValue", 0))), 0)
    except (TypeError, ValueError):
        return 0
