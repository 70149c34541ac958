"""Dead-letter queue operations: peek (non-destructive), redrive (send first, then delete), purge."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from db import DB, mark_sent, requeue_job
from db.message import job_id_hint

_OURS = "jobstack."  # attributes the worker adds when it dead-letters; not carried back to the main queue


@dataclass
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, Any]
    message_attributes: dict[str, Any]

    @property
    def job_id(self) -> UUID | None:
        return job_id_hint(self.body)

    @property
    def job_type(self) -> str | None:
        attr = self.message_attributes.get("jobType")
        if attr:
            return str(attr.get("StringValue"))
        try:
            doc = json.loads(self.body)
        except ValueError:
            return None
        return doc.get("type") if isinstance(doc, dict) else None

    def attribute(self, name: str) -> str | None:
        attr = self.message_attributes.get(name)
        return str(attr["StringValue"]) if attr and "StringValue" in attr else None


def receive(sqs: Any, dlq_url: str, limit: int, *, hold_seconds: int = 60) -> list[DeadLetter]:
    """Up to `limit` messages, each held invisible for `hold_seconds` while we work on it."""
    out: list[DeadLetter] = []
    while len(out) < limit:
        got = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=min(10, limit - len(out)),
            VisibilityTimeout=hold_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            break
        out.extend(
            DeadLetter(
                m["MessageId"], m["ReceiptHandle"], m["Body"], m.get("Attributes", {}), m.get("MessageAttributes", {})
            )
            for m in got
        )
    return out


def release(sqs: Any, dlq_url: str, letters: list[DeadLetter]) -> None:
    """Make peeked messages visible again at once."""
    for start in range(0, len(letters), 10):
        chunk = letters[start : start + 10]
        entries = [
            {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0} for i, m in enumerate(chunk)
        ]
        sqs.change_message_visibility_batch(QueueUrl=dlq_url, Entries=entries)


@dataclass
class RedriveReport:
    moved: list[str] = field(default_factory=list)  # message ids
    requeued_jobs: list[UUID] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def redrive(
    sqs: Any,
    db: DB | None,
    dlq_url: str,
    queue_url: str,
    *,
    limit: int,
    progress: Callable[[int], None] = lambda _n: None,
) -> RedriveReport:
    """Move up to `limit` messages back to the main queue, job ids kept.

    Order per batch: give the job fresh attempts, SEND to the main queue, then DELETE from the DLQ. A crash
    between send and delete leaves the message in both queues: the job runs once (the worker's claim
    dedupes) and the DLQ copy can be redriven again. Nothing is lost in any order of failures.
    """
    report = RedriveReport()
    fifo = queue_url.endswith(".fifo")
    while len(report.moved) + len(report.failed) < limit:
        letters = receive(sqs, dlq_url, min(10, limit - len(report.moved) - len(report.failed)))
        if not letters:
            break
        if db is not None:
            for letter in letters:
                job_id = letter.job_id
                if job_id is not None and requeue_job(db, job_id) is not None:
                    report.requeued_jobs.append(job_id)
        entries = []
        for i, letter in enumerate(letters):
            entry: dict[str, Any] = {
                "Id": str(i),
                "MessageBody": letter.body,
                "MessageAttributes": {k: v for k, v in letter.message_attributes.items() if not k.startswith(_OURS)},
            }
            if fifo:
                entry["MessageGroupId"] = letter.attributes.get("MessageGroupId") or str(
                    letter.job_id or letter.message_id
                )
                entry["MessageDeduplicationId"] = f"redrive-{letter.message_id}"
            entries.append(entry)
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        sent = {int(s["Id"]) for s in response.get("Successful", [])}
        for failure in response.get("Failed", []):
            letter = letters[int(failure["Id"])]
            report.failed[letter.message_id] = f"{failure.get('Code')}: {failure.get('Message', '')}"
        moved = [letters[i] for i in sorted(sent)]
        if moved:
            delete_entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(moved)]
            sqs.delete_message_batch(QueueUrl=dlq_url, Entries=delete_entries)
        report.moved.extend(m.message_id for m in moved)
        if db is not None:
            mark_sent(db, [m.job_id for m in moved if m.job_id is not None])
        progress(len(letters))
    return report
