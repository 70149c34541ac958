"""Dead-letter queue operations: peek (non-destructive), redrive (send first, then delete), purge."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from cli.dead_letter_kinds import NEVER_SUCCEED, SQS_REDRIVE, SUPERSEDED
from db import DB, JobState, JobStatus, job_states, mark_sent, requeue_job
from db.message import job_id_hint, send_arguments
from worker.contract import DEAD_LETTER_KIND, DEAD_LETTER_PREFIX, DEAD_LETTER_REASON, DeadLetterKind

#: A job's recorded send is taken as newer than a dead letter only past this margin: the publisher records
#: `sent_at` just after SQS stamps the message, so an SQS-redriven original is a little older than its row.
_SENT_MARGIN = timedelta(seconds=60)


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

    @property
    def sent_at(self) -> datetime | None:
        """When SQS accepted this message (its SentTimestamp, milliseconds since the epoch)."""
        try:
            return datetime.fromtimestamp(int(self.attributes["SentTimestamp"]) / 1000, tz=UTC)
        except (KeyError, ValueError, TypeError):
            return None

    @property
    def arrived_at(self) -> datetime | None:
        """When it arrived in the dead-letter queue, where that is known: the worker sends each dead letter
        itself (its SentTimestamp is the arrival). A message SQS moved from a standard queue (maxReceiveCount)
        keeps its first enqueue time, so its arrival is not known (None); on a FIFO queue SQS resets it ("the
        enqueue timestamp resets when the message is moved": SQS Developer Guide, dead-letter queue retention)."""
        fifo_moved = self.attributes.get("MessageGroupId") is not None
        return self.sent_at if self.kind is not None or fifo_moved else None

    @property
    def reason(self) -> str | None:
        """Why the worker dead-lettered it (None: SQS's own redrive moved it)."""
        return self.attribute(DEAD_LETTER_REASON)

    @property
    def kind(self) -> str | None:
        """The worker's DeadLetterKind for it (None: SQS's own redrive moved it)."""
        return self.attribute(DEAD_LETTER_KIND)

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


def kinds_of(letters: list[DeadLetter], db: DB | None) -> list[str]:
    """Each letter's reason kind (the worker's attribute, or SQS's own redrive); with a database also
    `not_found` for a message naming a job without a row, and `superseded` for one whose job has moved on
    (one query for the whole list)."""
    kinds = [letter.kind or SQS_REDRIVE for letter in letters]
    if db is None:
        return kinds
    ids = [letter.job_id for letter, kind in zip(letters, kinds, strict=True) if kind not in NEVER_SUCCEED]
    states = job_states(db, [i for i in ids if i is not None])
    for index, (letter, kind) in enumerate(zip(letters, kinds, strict=True)):
        if kind not in NEVER_SUCCEED:
            job_id = letter.job_id
            if job_id is None:
                kinds[index] = DeadLetterKind.MALFORMED
            elif job_id not in states:
                kinds[index] = DeadLetterKind.NOT_FOUND
            elif _superseded(letter, kind, states[job_id]):
                kinds[index] = SUPERSEDED
    return kinds


#: Kinds the worker gives a job's dead letter once the job has failed for good.
_FAILED_FOR_GOOD = frozenset({DeadLetterKind.FAILED, DeadLetterKind.EXHAUSTED})


def _superseded(letter: DeadLetter, kind: str, job: JobState) -> bool:
    """This letter is no longer its job's message: the job finished, is running, or has moved on since it
    was written. A letter the worker wrote when the job failed for good is stale once the job is anything
    else (`jobstack retry` gave it fresh attempts and a message); any other is stale once the job was sent
    again after it (`jobstack retry`, the sweeper)."""
    if job.status in (JobStatus.COMPLETED, JobStatus.CANCELLED, JobStatus.PROCESSING):
        return True
    if kind in _FAILED_FOR_GOOD:
        return not job.failed_for_good
    letter_sent = letter.sent_at
    return job.sent_at is not None and letter_sent is not None and job.sent_at > letter_sent + _SENT_MARGIN


@dataclass
class RedriveReport:
    moved: dict[str, int] = field(default_factory=dict)  # kind -> messages sent back to the main queue
    skipped: dict[str, int] = field(default_factory=dict)  # kind -> left in the DLQ (can never succeed)
    requeued_jobs: list[UUID] = field(default_factory=list)
    superseded: int = 0  # deleted: their jobs had moved on (retried, finished, running)
    failed: dict[str, str] = field(default_factory=dict)  # message id -> SQS's reason
    present: int = 0  # messages in the DLQ when the redrive started: it handles at most these

    @property
    def moved_total(self) -> int:
        return sum(self.moved.values())


def redrive(
    sqs: Any,
    db: DB | None,
    dlq_url: str,
    queue_url: str,
    *,
    limit: int,
    include: frozenset[str] = frozenset(),
    only: frozenset[str] | None = None,
    progress: Callable[[int], None] = lambda _n: None,
) -> RedriveReport:
    """Move the messages present in the DLQ when it starts (at most `limit`) back to the main queue, job ids
    kept; kinds that can never succeed (NEVER_SUCCEED, minus `include`) stay where they are.

    It ends: it handles at most the messages it counted first, and stops at the first message it has
    already seen (a skipped message coming round again) or whose job it already moved in this run (the
    running worker dead-lettered it again): re-receiving what the worker puts back would loop for ever.
    Order per batch: give the job fresh attempts, SEND to the main queue, then DELETE from the DLQ. A crash
    between send and delete leaves the message in both queues: the job runs once (the worker's claim
    dedupes) and the DLQ copy can be redriven again. Nothing is lost in any order of failures. Skipped
    messages are held invisible while the redrive runs (so they are not received twice), then released.
    With `only`, letters of other kinds are held and released the same way, untouched; a kind named in
    `only` is moved even if it can never succeed (naming it is the operator's choice, as --include is).
    """
    report = RedriveReport(present=_depth(sqs, dlq_url))
    budget = min(limit, report.present)
    seen: set[str] = set()
    moved_jobs: set[UUID] = set()
    held: list[DeadLetter] = []
    handled = 0
    try:
        while handled < budget:
            letters = receive(sqs, dlq_url, min(10, budget - handled), hold_seconds=_HOLD_SECONDS)
            fresh = [m for m in letters if m.message_id not in seen and m.job_id not in moved_jobs]
            came_back = [m for m in letters if m not in fresh]
            held.extend(came_back)  # released below: they stay in the DLQ for a later redrive
            if not fresh:
                break
            seen.update(m.message_id for m in fresh)
            handled += len(fresh)
            to_move, stale = [], []
            for letter, kind in zip(fresh, kinds_of(fresh, db), strict=True):
                if kind == SUPERSEDED:
                    stale.append(letter)
                elif only is not None and kind not in only:
                    held.append(letter)
                elif kind in NEVER_SUCCEED and kind not in include and not (only and kind in only):
                    report.skipped[kind] = report.skipped.get(kind, 0) + 1
                    held.append(letter)
                else:
                    to_move.append((letter, kind))
            if stale:
                report.superseded += _delete(sqs, dlq_url, stale)
            if to_move:
                _move(sqs, db, dlq_url, queue_url, to_move, report)
                moved_jobs.update(m.job_id for m, _ in to_move if m.job_id is not None)
            progress(len(fresh))
            if came_back:
                break
    finally:
        release(sqs, dlq_url, held)
    return report


_HOLD_SECONDS = 300  # long enough for a redrive of the DLQ's whole budget; released at the end anyway


def _delete(sqs: Any, dlq_url: str, letters: list[DeadLetter]) -> int:
    entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(letters)]
    response = sqs.delete_message_batch(QueueUrl=dlq_url, Entries=entries)
    return len(response.get("Successful", []))


def _depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _move(
    sqs: Any, db: DB | None, dlq_url: str, queue_url: str, batch: list[tuple[DeadLetter, str]], report: RedriveReport
) -> None:
    letters = [letter for letter, _ in batch]
    if db is not None:
        for letter in letters:
            job_id = letter.job_id
            if job_id is not None and requeue_job(db, job_id, message_lost=True) is not None:
                report.requeued_jobs.append(job_id)
    entries = []
    for i, letter in enumerate(letters):
        attributes = {k: v for k, v in letter.message_attributes.items() if not k.startswith(DEAD_LETTER_PREFIX)}
        entry = send_arguments(
            queue_url,
            letter.body,
            attributes,  # ours stay behind
            group=letter.attributes.get("MessageGroupId") or str(letter.job_id or letter.message_id),
            deduplication_id=f"redrive-{letter.message_id}",
        )
        del entry["QueueUrl"]
        entries.append({"Id": str(i), **entry})
    response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    sent = sorted(int(s["Id"]) for s in response.get("Successful", []))
    for failure in response.get("Failed", []):
        letter = letters[int(failure["Id"])]
        report.failed[letter.message_id] = f"{failure.get('Code')}: {failure.get('Message', '')}"
    if sent:
        delete_entries = [{"Id": str(i), "ReceiptHandle": letters[i].receipt_handle} for i in sent]
        sqs.delete_message_batch(QueueUrl=dlq_url, Entries=delete_entries)
    for i in sent:
        kind = batch[i][1]
        report.moved[kind] = report.moved.get(kind, 0) + 1
    if db is not None:
        mark_sent(db, [letters[i].job_id for i in sent if letters[i].job_id is not None])  # type: ignore[misc]
