"""Preparing a job to publish: the checks before a row is written, the row itself, and its message.

`db/publishing.py` commits its own rows; `db/outbox.py` writes them in the caller's transaction. Both prepare
here, write through db/rows.py and send through db/sending.py, so a job is validated, sized and sent the
same way whichever way it came.
"""

from __future__ import annotations

import contextlib
import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack

from .clock import utcnow
from .destinations import Destination, Queue
from .exceptions import IdempotencyConflict, InvalidBatchItem, JobstackError, PayloadTooLarge
from .job_types import get_job_type
from .message import JobMessage, message_size
from .models import Job, JobStatus
from .sqs_limits import DLQ_ATTRIBUTE_RESERVE, SQS_MAX_DELAY_SECONDS
from .trace_context import current_traceparent

#: How far ahead a job may be scheduled.
MAX_SCHEDULE_AHEAD = timedelta(days=366)


@dataclass(frozen=True)
class JobRequest:
    """One job for `publish_many`, `enqueue_many` or a workflow's step. `JobRequest.of(type, payload,
    **options)` takes the options exactly as `publish` does (`delay` too)."""

    type: str
    payload: dict[str, Any]
    delay_seconds: int = 0
    idempotency_key: str | None = None
    max_attempts: int | None = None
    #: When to run it (timezone-aware), up to MAX_SCHEDULE_AHEAD ahead: within SQS's 15-minute delay the
    #: message is sent now with DelaySeconds; later, the row is `scheduled` and the sweeper releases it.
    run_at: datetime | None = None
    #: FIFO queues: jobs with the same key run one at a time in publishing order (SQS's MessageGroupId);
    #: required there, refused on a standard queue.
    ordering_key: str | None = None
    #: Jobs (ids) this one waits for: it stays `waiting` until they finished (db/workflows.py).
    after: Sequence[uuid.UUID] = ()
    #: With `after`: "cancel" (default) if one of them fails for good or is cancelled, or "continue".
    on_failure: str | None = None
    #: One job per (type, key) among those not started yet (db/uniqueness.py): a second publish returns it,
    #: or with on_conflict="replace" updates its payload and run_at (a debounce).
    unique_key: str | None = None
    on_conflict: str = "keep"
    #: At most the handler's `concurrency_per_key` jobs of this type with this key run at once (a tenant,
    #: a customer): other keys are not held back. Works on standard queues.
    concurrency_key: str | None = None
    #: The priority lane to run in (a pool of the stack with this `priority`), whatever the type's pool;
    #: None: the type's own pool. Kept on the row, so every later send goes to the same lane.
    priority: str | None = None
    #: The customer (tenant) the job is for: kept on the row, and on a standard queue sent as the message's
    #: MessageGroupId, by which SQS fair queues keep one tenant's backlog from delaying the others' messages.
    #: A FIFO pool's group stays the ordering key (its order is per key; a tenant is usually one key or many).
    tenant: str | None = None

    @classmethod
    def of(cls, type: str, payload: dict[str, Any], **options: Unpack[JobOptions]) -> JobRequest:
        """The request `publish(db, type, payload, **options)` would make: the same options, checked the
        same way (`request_of`)."""
        return request_of(type, payload, options, now=utcnow())


class JobOptions(TypedDict, total=False):
    """Every option of one job, written once: `publish(db, type, payload, queue=..., **options)` and
    `enqueue(conn, type, payload, **options)` take exactly these (what `JobRequest` holds, plus `delay`, a
    relative `run_at`), and `request_of` turns them into the `JobRequest` that `prepare` checks."""

    delay_seconds: int
    idempotency_key: str | None
    max_attempts: int | None
    run_at: datetime | None
    delay: timedelta | None
    ordering_key: str | None
    after: Sequence[Any]  # job ids: a UUID, its text, or a Job
    on_failure: str | None
    unique_key: str | None
    on_conflict: str
    concurrency_key: str | None
    priority: str | None
    tenant: str | None


_OPTION_NAMES = frozenset(JobOptions.__annotations__)  # read once: publish is a hot path


def request_of(type: str, payload: dict[str, Any], options: JobOptions, *, now: datetime) -> JobRequest:
    """One call's job as a `JobRequest`: `delay` becomes `run_at` (`run_at_after`'s rule), the rest as given."""
    unknown = sorted(options.keys() - _OPTION_NAMES)
    if unknown:  # a caller without a type checker: one line naming the option and the ones there are
        raise TypeError(f"unknown job option {unknown[0]!r}: the options are {', '.join(JobOptions.__annotations__)}")
    rest: dict[str, Any] = {k: v for k, v in options.items() if k not in ("delay", "run_at", "after")}
    run_at = run_at_after(options.get("delay"), options.get("run_at"), now)
    return JobRequest(type, payload, run_at=run_at, after=tuple(options.get("after", ())), **rest)


@dataclass(frozen=True)
class Outgoing:
    message: JobMessage
    body: str
    delay_seconds: int = 0
    group: str | None = None  # FIFO MessageGroupId (None: the job's own id)
    #: FIFO MessageDeduplicationId (None: the job id). A re-send needs its own: SQS accepts, and silently
    #: drops, a message whose id it saw in the last 5 minutes.
    deduplication_id: str | None = None
    priority: str | None = None  # the lane whose queue it goes to (None: its type's pool)
    tenant: str | None = None  # a standard queue's MessageGroupId (SQS fair queues); FIFO queues use `group`

    @classmethod
    def resend_of(cls, job: Job, delay_seconds: int = 0) -> Outgoing:
        """An existing job's message sent once more (sweeper, retry), with a deduplication id of its own."""
        message = JobMessage(job.id, job.type, job.payload, job.traceparent)
        dedup = f"{job.id}.{uuid.uuid4().hex[:12]}"
        return cls(message, message.body(), delay_seconds, job.ordering_key, dedup, job.priority, job.tenant)


@dataclass(frozen=True)
class Prepared(Outgoing):
    row: dict[str, Any] = field(default_factory=dict)
    existing: Job | None = None
    on_conflict: str = "keep"  # with a unique_key: what a second publish does to the waiting job

    @classmethod
    def first_send_of(cls, job: Job, delay_seconds: int = 0) -> Prepared:
        """The first send of a job written earlier whose message SQS never accepted (an enqueued job, or a
        publish that got PublishError): deduplicated by the job id, like the publish it completes."""
        message = JobMessage(job.id, job.type, job.payload, job.traceparent)
        return cls(
            message, message.body(), delay_seconds, job.ordering_key, priority=job.priority, tenant=job.tenant,
            existing=job,
        )  # fmt: skip

    def job(self) -> Job:
        if self.existing is not None:
            return self.existing
        return Job(**self.row | {"status": JobStatus(self.row["status"])})


def key_of(p: Prepared) -> tuple[str, str]:
    return (p.row["type"], p.row["idempotency_key"])


def unsent(job: Job) -> bool:
    """A still-pending job whose message SQS never accepted (an earlier publish got PublishError)."""
    return job.status is JobStatus.PENDING and job.sent_at is None


def check_same_payload(first: Job, prepared: Prepared) -> None:
    if first.payload != prepared.row["payload"]:
        raise IdempotencyConflict(first.type, first.idempotency_key or "", first.id)


def check_keys_within(prepared: Sequence[Prepared]) -> None:
    seen: dict[tuple[str, str], tuple[int, Prepared]] = {}
    for index, p in enumerate(prepared):
        if p.row["idempotency_key"] is None:
            continue
        if key_of(p) in seen and seen[key_of(p)][1].row["payload"] != p.row["payload"]:
            first = seen[key_of(p)][0]
            raise InvalidBatchItem(
                index,
                f"idempotency key {p.row['idempotency_key']!r} is also on item {first} with another payload: "
                "one key names one job",
            )
        seen.setdefault(key_of(p), (index, p))


def prepare_all(
    requests: Sequence[JobRequest], destination: Destination, *, now: datetime, own_error_for_one: bool = False
) -> list[Prepared]:
    """Every request prepared for its queue, in order, before anything is written: an invalid one rejects the
    whole call with InvalidBatchItem naming its index (with `own_error_for_one`, a call of one request
    raises that request's own error, as `enqueue` does)."""
    prepared: list[Prepared] = []
    for index, request in enumerate(requests):
        try:
            prepared.append(prepare(request, destination.queue_for(request.type, request.priority), now=now))
        except (JobstackError, ValueError) as err:
            if own_error_for_one and len(requests) == 1:
                raise
            raise InvalidBatchItem(index, str(err)) from None
    return prepared


def prepare(request: JobRequest, queue: Queue, *, now: datetime) -> Prepared:
    job_type = get_job_type(request.type)
    payload = job_type.validate(request.payload)
    if not 0 <= request.delay_seconds <= SQS_MAX_DELAY_SECONDS:
        raise ValueError(f"delay_seconds must be between 0 and {SQS_MAX_DELAY_SECONDS}, got {request.delay_seconds}")
    if queue.fifo and request.delay_seconds:
        raise ValueError("delay_seconds is not supported per message on a FIFO queue: set the queue's delay instead")
    key = request.idempotency_key
    if key is not None and not 1 <= len(key) <= 255:
        raise ValueError("idempotency_key must be 1-255 characters")
    check_unique(request)
    if request.concurrency_key is not None and not 1 <= len(request.concurrency_key) <= 255:
        raise ValueError("concurrency_key must be 1-255 characters")
    check_priority(request.priority)
    check_tenant(request.tenant)
    max_attempts = request.max_attempts if request.max_attempts is not None else job_type.max_attempts
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    delay, status, run_at = _when(request, queue, now=now)
    message = JobMessage(job_id=uuid.uuid4(), type=job_type.name, payload=payload, traceparent=current_traceparent())
    body = message.body()
    size = message_size(body, message.attributes())
    if size > queue.max_message_bytes - DLQ_ATTRIBUTE_RESERVE:
        raise PayloadTooLarge(job_type.name, size, queue.max_message_bytes, DLQ_ATTRIBUTE_RESERVE)
    row = {
        "id": message.job_id,
        "type": job_type.name,
        "payload": payload,
        "status": status.value,
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
        "cancel_requested_at": None,
        "run_at": run_at,
        "ordering_key": request.ordering_key,
        "waiting_on": 0,
        "has_dependents": False,
        "on_failure": None,
        "workflow_id": None,
        "result": None,
        "unique_key": request.unique_key,
        "concurrency_key": request.concurrency_key,
        "priority": request.priority,
        "traceparent": message.traceparent,
        "progress": None,
        "progress_message": None,
        "heartbeat_at": None,
        "request_id": None,
        "trace_id": None,
        "wait_key": None,
        "wait_result": None,
        "tenant": request.tenant,
    }
    if request.ordering_key is not None:
        if not queue.fifo and queue.url:
            raise ValueError("ordering_key needs a FIFO queue (its URL ends in .fifo): standard queues keep no order")
        if not 1 <= len(request.ordering_key) <= 128:
            raise ValueError("ordering_key must be 1-128 characters (SQS's MessageGroupId)")
    elif queue.fifo:
        raise ValueError(
            f"job type {job_type.name!r} runs on a FIFO queue, which needs ordering_key: the key whose jobs must "
            "run in order, one at a time (e.g. ordering_key=f'customer-{id}')"
        )
    return Prepared(
        message=message, body=body, delay_seconds=delay, group=request.ordering_key, priority=request.priority,
        tenant=request.tenant, row=row, on_conflict=request.on_conflict,
    )  # fmt: skip


#: A priority's form: the stack's rule for a lane's name (stacks/settings.py), which
#: tests/db/test_request_rules.py feeds to this one, so a priority a lane could have is never refused here.
PRIORITY_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
MAX_PRIORITY = 24


#: A tenant is sent as SQS's MessageGroupId: 1-128 characters, letters, digits and punctuation (SQS's rule for
#: the attribute: "alphanumeric characters and punctuation"), no spaces.
TENANT = re.compile(r"[A-Za-z0-9!-/:-@\[-`{-~]{1,128}")


def check_tenant(tenant: object) -> None:
    if tenant is not None and not (isinstance(tenant, str) and TENANT.fullmatch(tenant)):
        raise ValueError(
            f"tenant must be 1-128 letters, digits or punctuation, no spaces (it is sent as SQS's MessageGroupId), "
            f"got {tenant!r}"
        )


def check_priority(priority: object) -> None:
    """The form of a priority, whatever the destination (a single queue cannot say which lanes exist)."""
    if priority is not None and not (
        isinstance(priority, str) and len(priority) <= MAX_PRIORITY and PRIORITY_NAME.fullmatch(priority)
    ):
        raise ValueError(
            f"priority must name a priority lane (1-{MAX_PRIORITY} lowercase letters, digits and single hyphens, "
            f"as the stack's pools declare it), got {priority!r}"
        )


def run_at_after(delay: timedelta | None, run_at: datetime | None, now: datetime) -> datetime | None:
    """`publish(..., delay=)` as a run_at: a delay runs the job later, never earlier, so a negative one is
    refused (as `jobstack publish --delay -5` is) rather than run at once."""
    if delay is None:
        return run_at
    if run_at is not None:
        raise ValueError("give run_at or delay, not both")
    if delay < timedelta(0):
        raise ValueError(f"delay must be zero or more, got {delay.total_seconds():g} s: it runs the job later")
    return now + delay


def job_ids(after: Sequence[object]) -> tuple[uuid.UUID, ...]:
    """`after=`'s entries as job ids: a UUID, its text (as `jobstack show` prints it), or a published Job;
    anything else is one line naming it, before anything is written."""
    ids = []
    for entry in after:
        found = getattr(entry, "id", entry)  # a Job stands for its id
        if isinstance(found, str):
            with contextlib.suppress(ValueError):
                found = uuid.UUID(found)
        if not isinstance(found, uuid.UUID):
            raise ValueError(f"after= names jobs by id (a UUID, its text, or a Job): {entry!r} is not one")
        ids.append(found)
    return tuple(ids)


def check_unique(request: JobRequest) -> None:
    """A unique key's rules, before anything is written (db/uniqueness.py says what the key means)."""
    if request.on_conflict not in ON_CONFLICT:
        raise ValueError(f"on_conflict must be one of {', '.join(map(repr, ON_CONFLICT))}, got {request.on_conflict!r}")
    if request.unique_key is None:
        if request.on_conflict != "keep":
            raise ValueError('on_conflict="replace" needs a unique_key: the key of the waiting job to replace')
        return
    if not 1 <= len(request.unique_key) <= 255:
        raise ValueError("unique_key must be 1-255 characters")
    if request.after:
        raise ValueError("unique_key applies to jobs waiting to start, not to jobs that wait for others (after=)")


#: What a publish does when a job of its type and unique key has not started yet: return that job, or
#: replace its payload and run_at with the new ones (a debounce).
ON_CONFLICT = ("keep", "replace")


def _when(request: JobRequest, queue: Queue, *, now: datetime) -> tuple[int, JobStatus, datetime | None]:
    """(DelaySeconds for the message, the row's status, its run_at) for `request`."""
    if request.run_at is None:
        return request.delay_seconds, JobStatus.PENDING, None
    if request.delay_seconds:
        raise ValueError("give delay_seconds or run_at, not both")
    if request.run_at.tzinfo is None:
        raise ValueError(
            "run_at must be timezone-aware, e.g. datetime(2026, 12, 1, 9, tzinfo=ZoneInfo('Europe/Paris'))"
        )
    wait = (request.run_at - now).total_seconds()
    if wait > MAX_SCHEDULE_AHEAD.total_seconds():
        raise ValueError(
            f"run_at may be at most {MAX_SCHEDULE_AHEAD.days} days ahead, got {request.run_at.isoformat()}"
        )
    if queue.fifo and wait > 0:
        raise ValueError("run_at in the future is not supported on a FIFO queue (it has no per-message delay)")
    if wait <= SQS_MAX_DELAY_SECONDS:  # SQS waits for us, to the second
        return delay_until(request.run_at, now), JobStatus.PENDING, request.run_at
    return 0, JobStatus.SCHEDULED, request.run_at


def delay_until(run_at: datetime | None, now: datetime) -> int:
    """DelaySeconds that makes a message released now visible at `run_at` (0 if due)."""
    if run_at is None:
        return 0
    return min(max(0, math.ceil((run_at - now).total_seconds())), SQS_MAX_DELAY_SECONDS)
