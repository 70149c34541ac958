"""Sending job messages to SQS within its batch and size rules, each to its type's queue."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from .destinations import Destination, Queue
from .message import message_size, send_arguments
from .preparation import Outgoing
from .redaction import redact
from .sqs_limits import SQS_BATCH_ENTRIES


def send_all(destination: Destination, outgoing: Sequence[Outgoing]) -> dict[uuid.UUID, str]:
    """Send each message to its type's (or priority lane's) queue, in batches; returns what SQS refused, with
    reasons."""
    by_queue: dict[str, tuple[Queue, list[Outgoing]]] = {}
    for item in outgoing:
        queue = destination.queue_for(item.message.type, item.priority)
        by_queue.setdefault(queue.url, (queue, []))[1].append(item)
    failures: dict[uuid.UUID, str] = {}
    for queue, items in by_queue.values():
        for batch in _sqs_batches(items, queue.max_message_bytes):
            failures.update(_send_batch(queue, batch))
    return failures


def send_args(queue: Queue, prepared: Outgoing) -> dict[str, Any]:
    # The ordering key's group (a job from before its pool was FIFO: its own group); the job id deduplicates a
    # publish retried after a lost reply, a re-send carries an id of its own.
    job_id = str(prepared.message.job_id)
    return send_arguments(
        queue.url,
        prepared.body,
        prepared.message.attributes(),
        group=prepared.group or job_id,
        deduplication_id=prepared.deduplication_id or job_id,
        delay_seconds=prepared.delay_seconds,
        tenant=prepared.tenant,
    )


def _sqs_batches(items: Sequence[Outgoing], max_bytes: int) -> Iterable[list[Outgoing]]:
    """Groups of at most 10 messages whose sizes add up to at most the queue's maximum (SQS's batch rule)."""
    batch: list[Outgoing] = []
    batch_bytes = 0
    for item in items:
        size = message_size(item.body, item.message.attributes())
        if batch and (len(batch) == SQS_BATCH_ENTRIES or batch_bytes + size > max_bytes):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(item)
        batch_bytes += size
    if batch:
        yield batch


def _send_batch(queue: Queue, batch: list[Outgoing]) -> dict[uuid.UUID, str]:
    entries = []
    for index, item in enumerate(batch):
        args = send_args(queue, item)
        del args["QueueUrl"]
        entries.append({"Id": str(index), **args})
    try:
        response = queue.client.send_message_batch(QueueUrl=queue.url, Entries=entries)
    except Exception as err:
        cause = describe_error(err)
        return {item.message.job_id: cause for item in batch}
    return {
        batch[int(f["Id"])].message.job_id: f"{f.get('Code', 'Error')}: {f.get('Message', 'no reason given')}"
        for f in response.get("Failed", [])
    }


def describe_error(err: Exception) -> str:
    return redact(f"{type(err).__name__}: {err}")[:500]
