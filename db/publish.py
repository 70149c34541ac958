"""Publishing jobs, database first: validate → INSERT and COMMIT → SendMessage.

The order is the guarantee. A message is only sent for a committed row, so the worker can always find
its job; if SQS fails after the commit the row stays `pending` and the sweeper sends it later (the
outbox relay), so nothing is lost. Invalid input is rejected before anything is written.

This module commits (that is its contract), so it takes a `DB`, never a caller's open transaction.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Insert, select, tuple_

from .engine import DB, redact
from .exceptions import (
    DatabaseUnavailable,
    IdempotencyConflict,
    InvalidBatchItem,
    JobstackError,
    PayloadTooLarge,
    PublishBatchError,
    PublishError,
)
from .job_types import get_job_type
from .message import JobMessage, message_size
from .models import Job, JobStatus, jobs_table
from .repository import mark_sent, utcnow

#: SQS's maximum message size since August 2025; queues created with a smaller limit pass theirs.
SQS_MAX_MESSAGE_BYTES = 1_048_576
#: Bytes a message must leave free so the worker's dead-letter copy (the same body plus its reason
#: attributes, see worker/dead_letters.py) still fits the queue's limit: a job that cannot be dead-lettered
#: would loop until SQS's redrive drops its reason.
DLQ_ATTRIBUTE_RESERVE = 2048
SQS_MAX_DELAY_SECONDS = 900
SQS_BATCH_ENTRIES = 10
_t = jobs_table


@dataclass(frozen=True)
class Queue:
    """Where messages go: a boto3 SQS client and the queue's URL (FIFO queues end in `.fifo`)."""

    client: Any
    url: str
    max_message_bytes: int = SQS_MAX_MESSAGE_BYTES

    @property
    def fifo(self) -> bool:
        return self.url.endswith(".fifo")


@dataclass(frozen=True)
class JobRequest:
    """One job for `publish_many`."""

    type: str
    payload: dict[str, Any]
    delay_seconds: int = 0
    idempotency_key: str | None = None
    max_attempts: int | None = None


@dataclass(frozen=True)
class _Outgoing:
    message: JobMessage
    body: str
    delay_seconds: int = 0

    @classmethod
    def of(cls, message: JobMessage, delay_seconds: int = 0) -> _Outgoing:
        return cls(message, message.body(), delay_seconds)


@dataclass(frozen=True)
class _Prepared(_Outgoing):
    row: dict[str, Any] = field(default_factory=dict)
    existing: Job | None = None

    @classmethod
    def of_job(cls, job: Job, delay_seconds: int = 0) -> _Prepared:
        message = JobMessage(job.id, job.type, job.payload)
        return cls(message, message.body(), delay_seconds, existing=job)

    def job(self) -> Job:
        if self.existing is not None:
            return self.existing
        return Job(**self.row | {"status": JobStatus.PENDING})


def publish(
    db: DB,
    type: str,
    payload: dict[str, Any],
    *,
    queue: Queue,
    delay_seconds: int = 0,
    idempotency_key: str | None = None,
    max_attempts: int | None = None,
) -> Job:
    """Save a job and send its message. Returns the job (the first one, if `idempotency_key` was seen).

    Raises UnknownJobType / InvalidPayload / PayloadTooLarge / ValueError before writing anything,
    IdempotencyConflict if `idempotency_key` was used with another payload, and PublishError (carrying
    `job_id`) if the row was saved but SQS refused the message. Publishing again with the same key after a
    PublishError sends the still-unsent job's message.
    """
    request = JobRequest(type, payload, delay_seconds, idempotency_key, max_attempts)
    prepared = _prepare(request, queue, now=utcnow())
    with db.autocommit() as conn:  # the INSERT commits itself: one round trip
        if not conn.execute(_insert_ignoring_duplicates(conn), prepared.row).scalars().all():
            assert idempotency_key is not None  # only a (type, key) duplicate is ignored
            first = _existing(conn, [(prepared.row["type"], idempotency_key)])[(prepared.row["type"], idempotency_key)]
            _check_same_payload(first, prepared)
            if not _unsent(first):
                return first
            prepared = _Prepared.of_job(first, delay_seconds)
    try:
        queue.client.send_message(**_send_args(queue, prepared))
    except Exception as err:
        raise PublishError(prepared.message.job_id, _describe(err)) from None
    return _record_sent(db, [prepared.job()])[0]


def publish_many(db: DB, items: Iterable[JobRequest], *, queue: Queue) -> list[Job]:
    """Save many jobs in one transaction (multi-row INSERTs), then send them with SendMessageBatch.

    All items are validated first: one invalid item rejects the call with InvalidBatchItem naming its
    index, and nothing is written. If SQS refuses some messages, PublishBatchError lists each failed job
    id with its reason (their rows stay pending for the sweeper) and the ids that were sent.
    Returns the jobs in input order; an item whose idempotency key was already used returns that job.
    """
    requests = list(items)
    now = utcnow()
    prepared: list[_Prepared] = []
    for index, request in enumerate(requests):
        try:
            prepared.append(_prepare(request, queue, now=now))
        except (JobstackError, ValueError) as err:
            raise InvalidBatchItem(index, str(err)) from None
    if not prepared:
        return []

    _check_keys_within(prepared)

    existing: dict[tuple[str, str], Job] = {}
    with db.begin() as conn:
        # executemany of INSERT .. RETURNING: SQLAlchemy's "insertmanyvalues" sends multi-row INSERTs of
        # 1000 rows from one small compiled statement (a .values(list) statement with 12,000 bind
        # parameters costs more to compile than the database takes to run it).
        inserted = set(conn.execute(_insert_ignoring_duplicates(conn), [p.row for p in prepared]).scalars())
        skipped = [_key(p) for p in prepared if p.message.job_id not in inserted]
        if skipped:
            existing = _existing(conn, skipped)
            for p in prepared:  # raising here rolls back this call's rows: all or nothing
                if p.message.job_id not in inserted:
                    _check_same_payload(existing[_key(p)], p)
    to_send = [p for p in prepared if p.message.job_id in inserted]
    resent = {j.id: _Prepared.of_job(j) for j in existing.values() if _unsent(j) and j.id not in inserted}
    to_send += resent.values()

    failures = _send_all(queue, to_send)
    sent = {j.id: j for j in _record_sent(db, [p.job() for p in to_send if p.message.job_id not in failures])}
    if failures:
        raise PublishBatchError(failures, list(sent))
    return [
        sent.get(job.id, job)
        for job in (p.job() if p.message.job_id in inserted else existing[_key(p)] for p in prepared)
    ]


def _key(p: _Prepared) -> tuple[str, str]:
    return (p.row["type"], p.row["idempotency_key"])


def resend(jobs: Sequence[Job], *, queue: Queue) -> dict[uuid.UUID, str]:
    """Send the messages of existing jobs again, same job ids (the sweeper's outbox relay, operators'
    retries). Returns the jobs SQS refused, with reasons; an empty dict means every message was sent.
    Recording the sends (`mark_sent`) is the caller's: the sweeper marked them before sending."""
    return _send_all(queue, [_Outgoing.of(JobMessage(job.id, job.type, job.payload)) for job in jobs])


def _unsent(job: Job) -> bool:
    """A still-pending job whose message SQS never accepted (an earlier publish got PublishError)."""
    return job.status is JobStatus.PENDING and job.sent_at is None


def _check_same_payload(first: Job, prepared: _Prepared) -> None:
    if first.payload != prepared.row["payload"]:
        raise IdempotencyConflict(first.type, first.idempotency_key or "", first.id)


def _check_keys_within(prepared: Sequence[_Prepared]) -> None:
    seen: dict[tuple[str, str], tuple[int, _Prepared]] = {}
    for index, p in enumerate(prepared):
        if p.row["idempotency_key"] is None:
            continue
        if _key(p) in seen and seen[_key(p)][1].row["payload"] != p.row["payload"]:
            first = seen[_key(p)][0]
            raise InvalidBatchItem(
                index,
                f"idempotency key {p.row['idempotency_key']!r} is also on item {first} with another payload: "
                "one key names one job",
            )
        seen.setdefault(_key(p), (index, p))


def _record_sent(db: DB, jobs: list[Job]) -> list[Job]:
    """Mark the jobs sent (one UPDATE) and return them as marked. If the database fails now, the messages
    are out anyway: the sweeper then sends each once more after its unsent window, a duplicate the worker
    absorbs, so the caller is not failed for it."""
    now = utcnow()
    with contextlib.suppress(DatabaseUnavailable):
        mark_sent(db, [j.id for j in jobs], now=now)
        return [replace(j, sent_at=now, send_count=j.send_count + 1) for j in jobs]
    return jobs


def _send_all(queue: Queue, outgoing: Sequence[_Outgoing]) -> dict[uuid.UUID, str]:
    failures: dict[uuid.UUID, str] = {}
    for batch in _sqs_batches(outgoing, queue.max_message_bytes):
        failures.update(_send_batch(queue, batch))
    return failures


def _prepare(request: JobRequest, queue: Queue, *, now: datetime) -> _Prepared:
    job_type = get_job_type(request.type)
    payload = job_type.validate(request.payload)
    if not 0 <= request.delay_seconds <= SQS_MAX_DELAY_SECONDS:
        raise ValueError(f"delay_seconds must be between 0 and {SQS_MAX_DELAY_SECONDS}, got {request.delay_seconds}")
    if queue.fifo and request.delay_seconds:
        raise ValueError("delay_seconds is not supported per message on a FIFO queue: set the queue's delay instead")
    key = request.idempotency_key
    if key is not None and not 1 <= len(key) <= 255:
        raise ValueError("idempotency_key must be 1-255 characters")
    max_attempts = request.max_attempts if request.max_attempts is not None else job_type.max_attempts
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    message = JobMessage(job_id=uuid.uuid4(), type=job_type.name, payload=payload)
    body = message.body()
    size = message_size(body, message.attributes())
    if size > queue.max_message_bytes - DLQ_ATTRIBUTE_RESERVE:
        raise PayloadTooLarge(job_type.name, size, queue.max_message_bytes, DLQ_ATTRIBUTE_RESERVE)
    row = {
        "id": message.job_id,
        "type": job_type.name,
        "payload": payload,
        "status": JobStatus.PENDING.value,
        "attempts": 0,
        "max_attempts": max_attempts,
        "error": None,
        "idempotency_key": key,
        "created_at": now,
        "updated_at": now,
        "started_at": None,
        "completed_at": None,
        "sent_at": None,
        "send_count": 0,
    }
    return _Prepared(message=message, body=body, delay_seconds=request.delay_seconds, row=row)


def _insert_ignoring_duplicates(conn: Connection) -> Insert:
    """INSERT that skips a row whose (type, idempotency_key) exists, returning the ids it did insert."""
    keys = [_t.c.type, _t.c.idempotency_key]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(_t).on_conflict_do_nothing(index_elements=keys).returning(_t.c.id)
    # Imported only when used: the worker's cold start never needs the SQLite dialect.
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(_t).on_conflict_do_nothing(index_elements=keys).returning(_t.c.id)


def _existing(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Job]:
    query = select(_t).where(tuple_(_t.c.type, _t.c.idempotency_key).in_(list(set(keys))))
    return {(r.type, r.idempotency_key): Job.from_row(r) for r in conn.execute(query)}


def _send_args(queue: Queue, prepared: _Outgoing) -> dict[str, Any]:
    args: dict[str, Any] = {
        "QueueUrl": queue.url,
        "MessageBody": prepared.body,
        "MessageAttributes": prepared.message.attributes(),
    }
    if queue.fifo:
        # One group per job: no head-of-line blocking; the job id deduplicates re-sends by the sweeper.
        args["MessageGroupId"] = str(prepared.message.job_id)
        args["MessageDeduplicationId"] = str(prepared.message.job_id)
    elif prepared.delay_seconds:
        args["DelaySeconds"] = prepared.delay_seconds
    return args


def _sqs_batches(items: Sequence[_Outgoing], max_bytes: int) -> Iterable[list[_Outgoing]]:
    """Groups of at most 10 messages whose sizes add up to at most the queue's maximum (SQS's batch rule)."""
    batch: list[_Outgoing] = []
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


def _send_batch(queue: Queue, batch: list[_Outgoing]) -> dict[uuid.UUID, str]:
    entries = []
    for index, item in enumerate(batch):
        args = _send_args(queue, item)
        del args["QueueUrl"]
        entries.append({"Id": str(index), **args})
    try:
        response = queue.client.send_message_batch(QueueUrl=queue.url, Entries=entries)
    except Exception as err:
        cause = _describe(err)
        return {item.message.job_id: cause for item in batch}
    return {
        batch[int(f["Id"])].message.job_id: f"{f.get('Code', 'Error')}: {f.get('Message', 'no reason given')}"
        for f in response.get("Failed", [])
    }


def _describe(err: Exception) -> str:
    return redact(f"{type(err).__name__}: {err}")[:500]
