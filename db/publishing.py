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
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Unpack

from . import tenant_quota
from .clock import utcnow
from .destinations import Destination, Queue
from .engine import DB
from .exceptions import DatabaseUnavailable, InvalidBatchItem, PublishBatchError, PublishError
from .models import Job, JobStatus
from .preparation import (
    JobOptions,
    JobRequest,
    Outgoing,
    Prepared,
    check_keys_within,
    check_same_payload,
    delay_until,
    prepare,
    prepare_all,
    request_of,
    unsent,
)
from .relay import mark_sent, take_due, unrelease, unsent_jobs
from .rows import existing_jobs, insert_ignoring_duplicates, write_rows
from .sending import describe_error, send_all, send_args
from .sqs_limits import SQS_MAX_DELAY_SECONDS, SQS_MAX_MESSAGE_BYTES
from .tenant_quota import quota_groups
from .uniqueness import insert_or_wait
from .workflows import publish_waiting

__all__ = ["SQS_MAX_DELAY_SECONDS", "SQS_MAX_MESSAGE_BYTES", "JobRequest", "Queue", "publish", "publish_many", "resend"]


def publish(
    db: DB,
    type: str,
    payload: dict[str, Any],
    *,
    queue: Destination,
    **options: Unpack[JobOptions],
) -> Job:
    """Save a job and send its message. Returns the job (the first one, if `idempotency_key` was seen).

    `run_at` (timezone-aware) or `delay` runs it later, up to a year ahead: within SQS's 15 minutes the
    message is sent now with DelaySeconds (exact); beyond, the job is `scheduled` and the sweeper releases it
    (see README, "Jobs in time"). `delay_seconds` is SQS's own (0-900) and excludes the other two.

    Raises UnknownJobType / InvalidPayload / PayloadTooLarge / ValueError before writing anything,
    IdempotencyConflict if `idempotency_key` was used with another payload, and PublishError (carrying
    `job_id`) if the row was saved but SQS refused the message. Publishing again with the same key after a
    PublishError sends the still-unsent job's message.

    `after=[job ids]`: the job waits (status `waiting`) until those finished, then runs; `on_failure`
    "cancel" (default) cancels it if one of them fails for good or is cancelled, "continue" runs it anyway
    (db/workflows.py).

    `unique_key`: while a job of this type and key has not started, publishing again returns it; with
    `on_conflict="replace"`, its payload and run_at become this call's (a debounce; db/uniqueness.py).
    `concurrency_key`: at most the handler's `concurrency_per_key` jobs of this type with this key run at
    once (db/claiming/concurrency_gate.py). `priority`: the priority lane to run in (a `Router` sends it to that
    lane's pool; db/routes.py).
    """
    now = utcnow()
    request = request_of(type, payload, options, now=now)
    if request.after or request.on_failure is not None:
        try:
            return publish_waiting(db, [request], queue=queue)[0]
        except InvalidBatchItem as err:  # one job: its own error, without "item 0"
            raise ValueError(err.reason) from None
    destination = queue.queue_for(type, request.priority)  # a Router picks the pool's queue; Unroutable first
    prepared = prepare(request, destination, now=now)
    quotas = quota_groups([prepared])
    # the INSERT commits itself: one round trip; with a tenant's quota, a transaction (db/tenant_quota.py)
    with db.begin() if quotas else db.autocommit() as conn:
        insert = insert_ignoring_duplicates(conn)
        tenant_quota.lock(conn, quotas)
        if ids := conn.execute(insert, prepared.row).scalars().all():
            tenant_quota.enforce(conn, quotas, set(ids))
        elif request.idempotency_key is not None and (first := _first_of_key(conn, prepared)) is not None:
            check_same_payload(first, prepared)
            if not unsent(first):
                return first
            prepared = Prepared.first_send_of(
                first, delay_until(first.run_at, now) if first.run_at else request.delay_seconds
            )
        else:  # a unique key of a job not started yet (db/uniqueness.py): its own publisher sends it
            waiting, new = insert_or_wait(conn, prepared, insert)
            if not new:
                return _release_if_due(db, destination, waiting, now)
            tenant_quota.enforce(conn, quotas, {waiting.id})
    if prepared.row and prepared.row["status"] == JobStatus.SCHEDULED.value:
        return prepared.job()  # no message yet: the sweeper releases it when it is due
    try:
        destination.client.send_message(**send_args(destination, prepared))
    except Exception as err:
        raise PublishError(prepared.message.job_id, describe_error(err)) from None
    return _record_sent(db, [prepared.job()])[0]


def _release_if_due(db: DB, destination: Destination, job: Job, now: datetime) -> Job:
    """A scheduled job whose run_at a replacing publish moved within SQS's delay is released now, by the
    sweeper's own conditional UPDATE (so it is sent once, whoever else tries), instead of at the next sweep."""
    horizon = now + timedelta(seconds=SQS_MAX_DELAY_SECONDS)
    if job.status is not JobStatus.SCHEDULED or job.run_at is None or job.run_at > horizon:
        return job
    released = take_due(db, horizon=horizon, now=now, only=job.id)
    if not released:
        return job  # another publisher or the sweeper released it
    failures = resend(released, queue=destination, now=now)
    if failures:
        unrelease(db, list(failures))
        raise PublishError(job.id, failures[job.id])
    return released[0]


def _first_of_key(conn: Any, prepared: Prepared) -> Job | None:
    key = (prepared.row["type"], prepared.row["idempotency_key"])
    return existing_jobs(conn, [key]).get(key)


def publish_many(db: DB, items: Iterable[JobRequest], *, queue: Destination) -> list[Job]:
    """Save many jobs in one transaction (multi-row INSERTs), then send them with SendMessageBatch.

    All items are validated first: one invalid item rejects the call with InvalidBatchItem naming its
    index, and nothing is written. If SQS refuses some messages, PublishBatchError lists each failed job
    id with its reason (their rows stay pending for the sweeper) and the ids that were sent.
    Returns the jobs in input order; an item whose idempotency key was already used returns that job.
    """
    requests = list(items)
    if any(r.after or r.on_failure is not None for r in requests):
        return publish_waiting(db, requests, queue=queue)
    now = utcnow()
    prepared = prepare_all(requests, queue, now=now)
    if not prepared:
        return []

    check_keys_within(prepared)

    with db.begin() as conn:  # all or nothing: a conflicting idempotency key rolls back every row
        written = write_rows(conn, prepared)
    inserted = written.inserted
    to_send: list[Outgoing] = [
        p for p in prepared if p.message.job_id in inserted and p.row["status"] != JobStatus.SCHEDULED.value
    ]
    unsent_before = {  # an earlier publish of the same key whose message SQS never accepted: sent now
        j.id: Prepared.first_send_of(j, delay_until(j.run_at, now))
        for j in written.jobs
        if j.id not in inserted and unsent(j)
    }
    to_send += unsent_before.values()

    failures = send_all(queue, to_send)
    by_id = {job.id: job for job in written.jobs}
    sent = {
        j.id: j
        for j in _record_sent(db, [by_id[o.message.job_id] for o in to_send if o.message.job_id not in failures])
    }
    if failures:
        raise PublishBatchError(failures, list(sent))
    return [sent.get(job.id, job) for job in written.jobs]


def resend(jobs: Sequence[Job], *, queue: Destination, now: datetime | None = None) -> dict[uuid.UUID, str]:
    """Send the messages of existing jobs again, same job ids (the sweeper's outbox relay and releases,
    operators' retries), each to its type's queue, in its ordering key's group (with a FIFO deduplication id
    of its own) and delayed until its run_at if that is still ahead. Returns the jobs SQS refused, with
    reasons; an empty dict means every message was sent. Recording the sends (`mark_sent`) is the
    caller's: the sweeper marked them before sending."""
    now = now or utcnow()
    return send_all(queue, [Outgoing.resend_of(j, delay_until(j.run_at, now)) for j in jobs])


def send_released(
    db: DB, job_ids: Sequence[uuid.UUID], *, queue: Destination
) -> tuple[list[uuid.UUID], dict[uuid.UUID, str]]:
    """Send the messages of jobs a completion or a cancellation released (a group's callback, a chain's next
    step) that are still unsent, and record the sends: the jobs sent, and those SQS refused with why. A
    refused one, or one whose process dies before sending, stays pending and unsent, and the sweeper's relay
    sends it after its unsent window. DatabaseUnavailable propagates, with the same outcome."""
    jobs = unsent_jobs(db, job_ids)
    failures = resend(jobs, queue=queue)
    sent = [job.id for job in jobs if job.id not in failures]
    mark_sent(db, sent)
    return sent, failures


def _record_sent(db: DB, jobs: list[Job]) -> list[Job]:
    """Mark the jobs sent (one UPDATE) and return them as marked. If the database fails now, the messages
    are out anyway: the sweeper then sends each once more after its unsent window, a duplicate the worker
    absorbs, so the caller is not failed for it."""
    now = utcnow()
    with contextlib.suppress(DatabaseUnavailable):
        mark_sent(db, [j.id for j in jobs], now=now)
        return [replace(j, sent_at=now, send_count=j.send_count + 1) for j in jobs]
    return jobs
