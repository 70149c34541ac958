"""One SQS record as the worker reads it, built once when the batch starts on it.

Lambda's event is a dict in lowerCamel keys, and what the worker needs from it (the receive count, the
deliveries of earlier copies, the FIFO group) was read in several places. `SqsRecord` reads each once, the
way Powertools' `SQSRecord` wraps the event; it is frozen, so nothing downstream can change what was
delivered. Reading only: the SQS calls are worker/transport.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from worker.contract import DELIVERIES_ATTRIBUTE


@dataclass(frozen=True, slots=True)
class SqsRecord:
    message_id: str
    body: str
    #: SQS's ApproximateReceiveCount of this message (at least 1).
    receive_count: int
    #: Receives of this job's message across the fresh copies that replaced it, this one included.
    deliveries: int
    #: The FIFO MessageGroupId (None on a standard queue).
    group: str | None
    receipt_handle: str | None
    #: The message attributes in the event's shape (`stringValue`, `dataType`).
    message_attributes: Mapping[str, Mapping[str, Any]]

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> SqsRecord:
        attributes = record.get("attributes") or {}
        message_attributes = record.get("messageAttributes") or {}
        received = _receive_count(attributes)
        group = attributes.get("MessageGroupId")
        return cls(
            message_id=str(record.get("messageId") or "unknown"),
            body=str(record.get("body") or ""),
            receive_count=received,
            deliveries=_earlier_deliveries(message_attributes) + received,
            group=str(group) if group else None,
            receipt_handle=record.get("receiptHandle") or None,
            message_attributes=MappingProxyType(dict(message_attributes)),
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
