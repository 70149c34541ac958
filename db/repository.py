"""Reading and moving jobs through their lifecycle: pending → processing → completed | failed.

Every state change is ONE conditional statement, so the database arbitrates races (two workers, a
duplicate SQS delivery, a zombie invocation) instead of a read-then-write in Python. Functions take a `DB`
(their own short transaction) or a `Connection` (the caller's transaction) first.

Times come from the caller's clock (`now`, default: this machine's UTC time) rather than the server's, so
the same SQL runs on PostgreSQL and SQLite and tests can travel in time. Lambda hosts are NTP-synced; the
stale windows these times feed are minutes long.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    and_,
    bindparam,
    column,
    delete,
    func,
    or_,
    select,
    text,
    true,
    update,
)

from .engine import DB, statements
from .models import Job, JobStatus, jobs_table

MAX_ERROR_CHARS = 4000
_t = jobs_table


def utcnow() -> datetime:
    return datetime.now(UTC)


class ClaimOutcome(enum.StrEnum):
    CLAIMED = "claimed"  # this caller now owns the job: run it
    COMPLETED = "completed"  # a duplicate delivery of finished work: acknowledge, do not run
    BUSY = "busy"  # another live invocation holds it: retry later
    EXHAUSTED = "exhausted"  # failed (or died) on its last attempt: dead-letter it, do not run it again
    TYPE_MISMATCH = "type_mismatch"  # the message names another type than the row: the message is wrong
    NOT_FOUND = "not_found"  # no row (yet): the publisher's commit may not be visible; retry later
    CANCELLED = "cancelled"  # an operator cancelled it: acknowledge, do not run


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    job: Job | None = None  # the row: as claimed, or as found when not claimed (None if NOT_FOUND)


# The two statements every job runs, built once with bind parameters: building and cache-keying a fresh
# statement per call was the largest share of a job's CPU when profiled (bench.cold_start measures jobs/s).
_job_id = bindparam("job_id", type_=_t.c.id.type)
_now = bindparam("now", type_=_t.c.updated_at.type)
_CLAIM = (
    update(_t)
    .where(
        _t.c.id == _job_id,
        or_(
            _t.c.status == JobStatus.PENDING.value,
            and_(
                or_(
                    _t.c.status == JobStatus.FAILED.value,
                    and_(
                        _t.c.status == JobStatus.PROCESSING.value,
                        _t.c.started_at < bindparam("stale_before", type_=_t.c.started_at.type),
                    ),
                ),
                _t.c.attempts < _t.c.max_attempts,
            ),
        ),
    )
    .values(
        status=JobStatus.PROCESSING.value,
        attempts=_t.c.attempts + 1,
        started_at=_now,
        completed_at=None,
        updated_at=_now,
    )
    .returning(*_t.c)
)
_CLAIM_OF_TYPE = _CLAIM.where(_t.c.type == bindparam("job_type", type_=_t.c.type.type))
_COMPLETE = (
    update(_t)
    .where(_t.c.id == _job_id, _t.c.status == JobStatus.PROCESSING.value)
    .values(status=JobStatus.COMPLETED.value, completed_at=_now, updated_at=_now, error=None)
)
# Every publish runs this once: built once, like claim and complete (a fresh statement cost 3x the UPDATE).
# Many rows at once, so it must never wait holding some of them (a worker completing one row and claiming
# the next would then deadlock with it): it skips rows another transaction is changing right now, which
# are being claimed or settled (a skipped pending row is re-sent by the sweeper, absorbed by the claim).
_MARK_SENT = (
    update(_t)
    .where(
        _t.c.id.in_(
            select(_t.c.id)
            .where(_t.c.id.in_(bindparam("ids", expanding=True)))
            .order_by(_t.c.id)
            .with_for_update(skip_locked=True)
        )
    )
    .values(sent_at=_now, send_count=_t.c.send_count + 1)
)
_MARK_ONE_SENT = update(_t).where(_t.c.id == _job_id).values(sent_at=_now, send_count=_t.c.send_count + 1)
_COMPLETE_ATTEMPT = _COMPLETE.where(_t.c.attempts == bindparam("attempt", type_=_t.c.attempts.type))


def existing_job_ids(db: DB | Connection, job_ids: Sequence[UUID]) -> set[UUID]:
    """Which of `job_ids` have a row: one query for a batch, instead of a read per id."""
    if not job_ids:
        return set()
    with statements(db) as conn:
        return set(conn.execute(select(_t.c.id).where(_t.c.id.in_(list(set(job_ids))))).scalars())


def get_job(db: DB | Connection, job_id: UUID) -> Job | None:
    with statements(db) as conn:
        row = conn.execute(select(_t).where(_t.c.id == job_id)).first()
    return Job.from_row(row) if row else None


def list_jobs(
    db: DB | Connection,
    *,
    status: JobStatus | str | None = None,
    type: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Job]:
    """Newest first."""
    query = select(_t).order_by(_t.c.created_at.desc(), _t.c.id).limit(limit)
    if status is not None:
        query = query.where(_t.c.status == JobStatus(status).value)
    if type is not None:
        query = query.where(_t.c.type == type)
    if since is not None:
        query = query.where(_t.c.created_at >= since)
    with statements(db) as conn:
        return [Job.from_row(r) for r in conn.execute(query)]


def claim_job(
    db: DB | Connection,
    job_id: UUID,
    *,
    stale_after: timedelta,
    job_type: str | None = None,
    now: datetime | None = None,
) -> Claim:
    """Take the job for this invocation if it is pending, failed, or processing but abandoned.

    A `processing` row whose `started_at` is older than `stale_after` belongs to an invocation that died
    (timeout, crash); it is reclaimed and the attempt counts. A failed or abandoned job with no attempts
    left is not claimed (EXHAUSTED): `requeue_job` gives it new attempts when an operator retries it. The
    miss path reads the row once to tell the caller why; the common path is the single UPDATE.
    With `job_type`, a row of another type is never claimed (TYPE_MISMATCH).
    """
    now = now or utcnow()
    stmt, params = _CLAIM, {"job_id": job_id, "now": now, "stale_before": now - stale_after}
    if job_type is not None:
        stmt, params = _CLAIM_OF_TYPE, params | {"job_type": job_type}
    with statements(db) as conn:
        row = conn.execute(stmt, params).first()
        if row is not None:
            return Claim(ClaimOutcome.CLAIMED, Job.from_row(row))
        current = conn.execute(select(_t).where(_t.c.id == job_id)).first()
    return _why_not_claimed(current, job_type=job_type, stale_after=stale_after, now=now)


def _why_not_claimed(current: Any, *, job_type: str | None, stale_after: timedelta, now: datetime) -> Claim:
    """The claim missed: read the row once to tell the caller why."""
    if current is None:
        return Claim(ClaimOutcome.NOT_FOUND)
    job = Job.from_row(current)
    if job_type is not None and job.type != job_type:
        return Claim(ClaimOutcome.TYPE_MISMATCH, job)
    if job.status is JobStatus.COMPLETED:
        return Claim(ClaimOutcome.COMPLETED, job)
    if job.status is JobStatus.CANCELLED:
        return Claim(ClaimOutcome.CANCELLED, job)
    abandoned = job.status is JobStatus.PROCESSING and job.started_at is not None and job.started_at < now - stale_after
    if job.attempts >= job.max_attempts and (job.status is JobStatus.FAILED or abandoned):
        return Claim(ClaimOutcome.EXHAUSTED, job)
    return Claim(ClaimOutcome.BUSY, job)


# Completing one job and claiming the next in one statement (PostgreSQL): a data-modifying CTE, which a
# transaction-mode pooler passes through unchanged (unlike a server-side prepared statement). Both UPDATEs
# run, to completion, whatever the outer SELECT reads; the outer SELECT always returns one row, so the
# caller learns whether the completion took even when the claim found nothing. The statement locks two
# rows, so the claim never waits for its row (SKIP LOCKED): holding the completed row while waiting for
# one that a publisher's or another worker's statement holds could close a cycle (a deadlock, seen under
# load). A row another transaction is changing right now is reported BUSY and retried after a backoff.
_COMPLETE_AND_CLAIM = (
    text(
        f"""
    WITH done AS (
        UPDATE background_jobs
        SET status = '{JobStatus.COMPLETED.value}', completed_at = :now, updated_at = :now, error = NULL
        WHERE id = :done_id AND status = '{JobStatus.PROCESSING.value}' AND attempts = :done_attempt
        RETURNING id
    ), claimed AS (
        UPDATE background_jobs
        SET status = '{JobStatus.PROCESSING.value}', attempts = attempts + 1, started_at = :now,
            completed_at = NULL, updated_at = :now
        WHERE id = (SELECT id FROM background_jobs WHERE id = :job_id FOR UPDATE SKIP LOCKED)
          AND type = :job_type AND (
            status = '{JobStatus.PENDING.value}'
            OR ((status = '{JobStatus.FAILED.value}'
                 OR (status = '{JobStatus.PROCESSING.value}' AND started_at < :stale_before))
                AND attempts < max_attempts))
        RETURNING *
    )
    SELECT {", ".join(f"claimed.{c.name}" for c in _t.c)}, (SELECT count(*) FROM done) AS done_count
    FROM (VALUES (1)) AS one (x) LEFT JOIN claimed ON true
    """
    )
    .bindparams(
        bindparam("now", type_=_t.c.updated_at.type),
        bindparam("stale_before", type_=_t.c.started_at.type),
        bindparam("done_id", type_=_t.c.id.type),
        bindparam("job_id", type_=_t.c.id.type),
    )
    .columns(*_t.c, column("done_count", Integer))
)


def complete_and_claim(
    db: DB,
    done: tuple[UUID, int],
    job_id: UUID,
    *,
    stale_after: timedelta,
    job_type: str,
    now: datetime | None = None,
) -> tuple[bool, Claim]:
    """`complete_job(done)` and `claim_job(job_id)` in one round trip and one commit (PostgreSQL only).

    `done` is (job id, attempt): the same fence as `complete_job`'s. Returns whether the completion took and
    the claim, exactly as `claim_job` would return it. `done` and `job_id` must differ (one statement may
    not change a row twice).
    """
    assert done[0] != job_id, "complete and claim the same job in two statements"
    now = now or utcnow()
    params = {
        "now": now, "stale_before": now - stale_after, "done_id": done[0], "done_attempt": done[1],
        "job_id": job_id, "job_type": job_type,
    }  # fmt: skip
    with statements(db) as conn:
        row = conn.execute(_COMPLETE_AND_CLAIM, params).one()
        completed = row.done_count == 1
        if row.id is not None:
            return completed, Claim(ClaimOutcome.CLAIMED, Job.from_row(row))
        current = conn.execute(select(_t).where(_t.c.id == job_id)).first()
    return completed, _why_not_claimed(current, job_type=job_type, stale_after=stale_after, now=now)


def complete_job(db: DB | Connection, job_id: UUID, *, attempt: int | None = None, now: datetime | None = None) -> bool:
    """Mark a processing job completed. With `attempt`, only if no later claim took it over (a fence
    against a zombie invocation settling work another invocation now owns). True if the row changed."""
    params = {"job_id": job_id, "now": now or utcnow()}
    stmt = _COMPLETE if attempt is None else _COMPLETE_ATTEMPT
    if attempt is not None:
        params["attempt"] = attempt
    with statements(db) as conn:
        return conn.execute(stmt, params).rowcount == 1


def fail_job(
    db: DB | Connection,
    job_id: UUID,
    error: str,
    *,
    attempt: int | None = None,
    job_type: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Mark a job failed with `error` (truncated to MAX_ERROR_CHARS). Never touches a completed job.
    With `attempt`, only the invocation holding that claim may fail it; with `job_type`, only a row of that
    type (so a garbage message cannot fail somebody else's job). True if the row changed."""
    now = now or utcnow()
    stmt = (
        update(_t)
        .where(_t.c.id == job_id, _t.c.status.not_in([JobStatus.COMPLETED.value, JobStatus.CANCELLED.value]))
        .values(status=JobStatus.FAILED.value, error=truncate_error(error), updated_at=now)
    )
    if attempt is not None:
        stmt = stmt.where(_t.c.attempts == attempt, _t.c.status == JobStatus.PROCESSING.value)
    if job_type is not None:
        stmt = stmt.where(_t.c.type == job_type)
    with statements(db) as conn:
        return conn.execute(stmt).rowcount == 1


@dataclass(frozen=True)
class ResendWindows:
    """How long the sweeper waits before deciding a job's message is gone, derived from the queue's settings
    (see `stacks.settings.Settings`), never guessed: re-sending earlier multiplies messages in a backlog.

    - `unsent_after`: a `pending` row whose send was never confirmed (the publisher's SendMessage failed, or
      its process died between COMMIT and send) is sent after this.
    - `lost_after`: a job that failed with attempts left, or whose invocation died, has its message back in
      the queue within the visibility timeout plus the longest backoff; after this it is re-sent, once per
      failure or claim.
    - `expired_after`: a message sent before this has left the queue for sure (retention, plus the
      visibility timeout and SQS's longest delay), so a row still waiting for it is re-sent.
    """

    unsent_after: timedelta
    lost_after: timedelta
    expired_after: timedelta
    stale_after: timedelta


@dataclass(frozen=True)
class JobTypes:
    """The job types of one worker pool, for the sweeper's per-pool windows: the types listed in `only`, or
    (the default pool) every type except those in `excluding`."""

    only: frozenset[str] | None = None
    excluding: frozenset[str] = frozenset()

    def clause(self) -> ColumnElement[bool]:
        if self.only is not None:
            return _t.c.type.in_(sorted(self.only))
        return _t.c.type.not_in(sorted(self.excluding)) if self.excluding else true()


def take_for_resend(
    db: DB | Connection,
    windows: ResendWindows,
    *,
    limit: int = 500,
    now: datetime | None = None,
    job_types: JobTypes | None = None,
) -> list[Job]:
    """Mark and return the jobs whose message must be sent again, oldest first, at most `limit` (of
    `job_types` only, if given: each pool's windows follow from its own queue and timeout).

    Marking (`sent_at` = now, `send_count` + 1) and choosing are one conditional UPDATE, so two sweepers
    running at once never both take a job, and a job taken is not taken again until its window passes
    anew. The caller sends the messages and calls `unmark_sent` for those SQS refused.
    """
    now = now or utcnow()
    attempts_left = _t.c.attempts < _t.c.max_attempts
    expired = _t.c.sent_at < now - windows.expired_after
    due = or_(
        and_(
            _t.c.status == JobStatus.PENDING.value,
            or_(and_(_t.c.sent_at.is_(None), _t.c.updated_at < now - windows.unsent_after), expired),
        ),
        and_(
            _t.c.status == JobStatus.PROCESSING.value,
            attempts_left,
            _t.c.started_at < now - max(windows.stale_after, windows.lost_after),
            or_(_t.c.sent_at.is_(None), _t.c.sent_at < _t.c.started_at, expired),
        ),
        and_(
            _t.c.status == JobStatus.FAILED.value,
            attempts_left,
            _t.c.updated_at < now - windows.lost_after,
            or_(_t.c.sent_at.is_(None), _t.c.sent_at < _t.c.updated_at, expired),
        ),
    )
    if job_types is not None:
        due = and_(job_types.clause(), due)
    # Rows another transaction is changing (a worker's claim or completion) are skipped, never waited for
    # while holding others: the next sweep sees them.
    chosen = (
        select(_t.c.id).where(due).order_by(_t.c.updated_at).limit(limit).with_for_update(skip_locked=True)
    ).scalar_subquery()
    stmt = (
        update(_t).where(_t.c.id.in_(chosen), due).values(sent_at=now, send_count=_t.c.send_count + 1).returning(*_t.c)
    )
    with statements(db) as conn:
        jobs = [Job.from_row(r) for r in conn.execute(stmt)]
    return sorted(jobs, key=lambda j: j.updated_at)


def take_due(db: DB | Connection, *, horizon: datetime, limit: int = 500, now: datetime | None = None) -> list[Job]:
    """Release the scheduled jobs due by `horizon` (earliest first, at most `limit`): each becomes `pending`
    and marked sent in one conditional UPDATE that skips rows another releaser holds, so concurrent
    sweepers never take a job twice; overdue ones (after downtime) are taken like the rest. The caller
    sends each message with the rest of its wait as DelaySeconds, and calls `unrelease` for what SQS refused.
    """
    now = now or utcnow()
    due = and_(_t.c.status == JobStatus.SCHEDULED.value, _t.c.run_at <= horizon)
    chosen = select(_t.c.id).where(due).order_by(_t.c.run_at).limit(limit).with_for_update(skip_locked=True)
    stmt = (
        update(_t)
        .where(_t.c.id.in_(chosen.scalar_subquery()), due)
        .values(status=JobStatus.PENDING.value, sent_at=now, send_count=_t.c.send_count + 1, updated_at=now)
        .returning(*_t.c)
    )
    with statements(db) as conn:
        jobs = [Job.from_row(r) for r in conn.execute(stmt)]
    return sorted(jobs, key=lambda j: j.run_at or now)


def unrelease(db: DB | Connection, job_ids: Sequence[UUID]) -> int:
    """Undo `take_due` for jobs whose message SQS refused: scheduled again, the next sweep retries them."""
    if not job_ids:
        return 0
    stmt = (
        update(_t)
        .where(_t.c.id.in_(job_ids), _t.c.status == JobStatus.PENDING.value, _t.c.attempts == 0)
        .values(status=JobStatus.SCHEDULED.value, sent_at=None, send_count=_t.c.send_count - 1)
    )
    with statements(db) as conn:
        return conn.execute(stmt).rowcount


def mark_sent(db: DB | Connection, job_ids: Sequence[UUID], *, now: datetime | None = None) -> int:
    """Record that SQS accepted a message for each job (one UPDATE for all of them)."""
    if not job_ids:
        return 0
    with statements(db) as conn:
        if len(job_ids) == 1:  # a publish: the plain statement, without expanding an IN list
            return conn.execute(_MARK_ONE_SENT, {"job_id": job_ids[0], "now": now or utcnow()}).rowcount
        return conn.execute(_MARK_SENT, {"ids": list(job_ids), "now": now or utcnow()}).rowcount


def unmark_sent(db: DB | Connection, job_ids: Sequence[UUID]) -> int:
    """Undo `take_for_resend` for jobs whose message SQS refused, so the next sweep tries them again."""
    if not job_ids:
        return 0
    stmt = (
        update(_t).where(_t.c.id.in_(job_ids), _t.c.send_count > 0).values(sent_at=None, send_count=_t.c.send_count - 1)
    )
    with statements(db) as conn:
        return conn.execute(stmt).rowcount


def abandoned_jobs(
    db: DB | Connection,
    stale_after: timedelta,
    *,
    limit: int = 500,
    now: datetime | None = None,
    job_types: JobTypes | None = None,
) -> list[Job]:
    """`processing` rows whose invocation died on their last attempt (nothing will ever claim them again)."""
    cutoff = (now or utcnow()) - stale_after
    query = (
        select(_t)
        .where(
            _t.c.status == JobStatus.PROCESSING.value,
            _t.c.started_at < cutoff,
            _t.c.attempts >= _t.c.max_attempts,
            (job_types or JobTypes()).clause(),
        )
        .order_by(_t.c.started_at)
        .limit(limit)
    )
    with statements(db) as conn:
        return [Job.from_row(r) for r in conn.execute(query)]


def requeue_job(
    db: DB | Connection,
    job_id: UUID,
    *,
    force: bool = False,
    message_lost: bool = False,
    now: datetime | None = None,
) -> Job | None:
    """Make a job runnable again, now, with a fresh set of attempts (an operator's retry or DLQ redrive).

    A job that still has a live message is refused, or the caller's new message would be a second one (two
    copies run its attempts twice as fast, past the backoff, and leave two dead letters). So, by default,
    only a `failed` job with no attempts left; with `message_lost` (a DLQ redrive, which holds the job's only
    message) also a `pending` or `failed` one; with `force` also `pending`, `failed`, `completed` and
    `cancelled`. Never a job that is processing right now. Its `run_at` (a cancelled scheduled job's) and its
    last error are cleared. Returns the updated row, or None if nothing changed.
    """
    now = now or utcnow()
    allowed: ColumnElement[bool]
    if force:
        allowed = _t.c.status.in_([s.value for s in (JobStatus.PENDING, JobStatus.FAILED, JobStatus.COMPLETED,
                                                      JobStatus.CANCELLED)])  # fmt: skip
    elif message_lost:
        allowed = _t.c.status.in_([JobStatus.PENDING.value, JobStatus.FAILED.value])
    else:
        allowed = and_(_t.c.status == JobStatus.FAILED.value, _t.c.attempts >= _t.c.max_attempts)
    stmt = (
        update(_t)
        .where(_t.c.id == job_id, allowed)
        .values(
            status=JobStatus.PENDING.value,
            attempts=0,
            error=None,
            run_at=None,
            started_at=None,
            completed_at=None,
            updated_at=now,
            sent_at=None,  # the caller sends next and marks it; if it cannot, the sweeper relays the job
            cancel_requested_at=None,
        )
        .returning(*_t.c)
    )
    with statements(db) as conn:
        row = conn.execute(stmt).first()
    return Job.from_row(row) if row else None


@dataclass(frozen=True)
class JobState:
    """What a DLQ redrive needs of a job to tell whether a dead letter is still its message."""

    status: JobStatus
    attempts: int
    max_attempts: int
    sent_at: datetime | None

    @property
    def failed_for_good(self) -> bool:
        return self.status is JobStatus.FAILED and self.attempts >= self.max_attempts


def job_states(db: DB | Connection, job_ids: Sequence[UUID]) -> dict[UUID, JobState]:
    """Each existing job's state, one query for a batch (a DLQ redrive's view of its letters)."""
    if not job_ids:
        return {}
    columns = (_t.c.id, _t.c.status, _t.c.attempts, _t.c.max_attempts, _t.c.sent_at)
    with statements(db) as conn:
        rows = conn.execute(select(*columns).where(_t.c.id.in_(list(set(job_ids)))))
        return {r.id: JobState(JobStatus(r.status), r.attempts, r.max_attempts, r.sent_at) for r in rows}


#: Statuses whose rows are history, never work: what pruning may delete.
PRUNABLE = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


def prune_jobs(
    db: DB | Connection,
    status: JobStatus,
    older_than: datetime,
    *,
    limit: int = 1000,
    dry_run: bool = False,
) -> int:
    """Delete up to `limit` `completed`, `cancelled` (or exhausted `failed`) rows last changed before `older_than`.

    Bounded, so a first prune of a large table never holds one long transaction or lock; callers loop
    until it returns less than `limit`. A `failed` row with attempts left is live work (its retry is
    queued) and is never pruned. Served by the (status, updated_at) index. With `dry_run`, counts instead.
    """
    if status not in PRUNABLE:
        raise ValueError(f"only {', '.join(s.value for s in PRUNABLE)} jobs can be pruned, not {status.value}")
    which = [_t.c.status == status.value, _t.c.updated_at < older_than]
    if status is JobStatus.FAILED:
        which.append(_t.c.attempts >= _t.c.max_attempts)
    with statements(db) as conn:
        if dry_run:
            return int(conn.execute(select(func.count()).where(*which)).scalar_one())
        chosen = select(_t.c.id).where(*which).order_by(_t.c.updated_at).limit(limit).scalar_subquery()
        return conn.execute(delete(_t).where(_t.c.id.in_(chosen))).rowcount


@dataclass(frozen=True)
class CancelReport:
    cancelled: list[UUID]  # pending or waiting for a retry: they will not run
    asked_to_stop: list[UUID]  # running now: their handler is asked to stop (ctx.cancel_requested())
    refused: dict[UUID, str]  # completed (or already cancelled): id -> its status
    missing: list[UUID]


def cancel_jobs(db: DB | Connection, job_ids: Sequence[UUID], *, now: datetime | None = None) -> CancelReport:
    """Cancel jobs: a pending or failed one never runs again (its message is acknowledged unrun); a running
    one is asked to stop (`cancel_requested_at`) and otherwise allowed to finish; a completed one is refused.
    Three conditional statements, so a job that changes state meanwhile is counted as what it became."""
    now = now or utcnow()
    ids = list(dict.fromkeys(job_ids))
    waiting = [JobStatus.PENDING.value, JobStatus.FAILED.value, JobStatus.SCHEDULED.value]
    with statements(db) as conn:
        cancelled = list(
            conn.execute(
                update(_t)
                .where(_t.c.id.in_(ids), _t.c.status.in_(waiting))
                .values(status=JobStatus.CANCELLED.value, error="cancelled", updated_at=now)
                .returning(_t.c.id)
            ).scalars()
        )
        asked = list(
            conn.execute(
                update(_t)
                .where(_t.c.id.in_(ids), _t.c.status == JobStatus.PROCESSING.value)
                .values(cancel_requested_at=now)
                .returning(_t.c.id)
            ).scalars()
        )
        done = set(cancelled) | set(asked)
        rest = [i for i in ids if i not in done]
        found = dict(conn.execute(select(_t.c.id, _t.c.status).where(_t.c.id.in_(rest))).tuples().all()) if rest else {}
    return CancelReport(
        cancelled=cancelled,
        asked_to_stop=asked,
        refused={i: str(found[i]) for i in rest if i in found},
        missing=[i for i in rest if i not in found],
    )


def cancel_requested(db: DB | Connection, job_id: UUID) -> bool:
    """Whether an operator asked this (running) job to stop: one indexed read, for handlers to poll."""
    with statements(db) as conn:
        value = conn.execute(select(_t.c.cancel_requested_at).where(_t.c.id == job_id)).scalar()
    return value is not None


def cancel_running(db: DB | Connection, job_id: UUID, *, attempt: int, now: datetime | None = None) -> bool:
    """If an operator asked this running job to stop, it failed (or stopped) on `attempt` because of that:
    cancelled, not retried. One conditional statement; False (nothing changed) if nobody asked."""
    now = now or utcnow()
    stmt = (
        update(_t)
        .where(
            _t.c.id == job_id,
            _t.c.status == JobStatus.PROCESSING.value,
            _t.c.attempts == attempt,
            _t.c.cancel_requested_at.is_not(None),
        )
        .values(status=JobStatus.CANCELLED.value, error="cancelled while running", updated_at=now)
    )
    with statements(db) as conn:
        return conn.execute(stmt).rowcount == 1


def oldest_pending(db: DB | Connection) -> datetime | None:
    """When the oldest pending job was created: one `min()` however many are waiting."""
    with statements(db) as conn:
        value = conn.execute(select(func.min(_t.c.created_at)).where(_t.c.status == JobStatus.PENDING.value)).scalar()
    if isinstance(value, str):  # SQLite returns the aggregate as text, without the column's type
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def job_id_pages(
    db: DB | Connection,
    *,
    status: JobStatus | str,
    type: str | None = None,
    since: datetime | None = None,
    page: int = 500,
) -> Iterator[list[UUID]]:
    """The ids of the jobs with `status` (and `type`, created since `since`), a page at a time in id order:
    each page is read after the caller handled the previous one, so changing those rows (a retry makes
    them pending) moves nothing under the cursor, and no run holds every id in memory."""
    after: UUID | None = None
    while True:
        query = select(_t.c.id).where(_t.c.status == JobStatus(status).value).order_by(_t.c.id).limit(page)
        if type is not None:
            query = query.where(_t.c.type == type)
        if since is not None:
            query = query.where(_t.c.created_at >= since)
        if after is not None:
            query = query.where(_t.c.id > after)
        with statements(db) as conn:
            ids = list(conn.execute(query).scalars())
        if not ids:
            return
        yield ids
        after = ids[-1]


def count_jobs(
    db: DB | Connection, *, status: JobStatus | str, type: str | None = None, since: datetime | None = None
) -> int:
    query = select(func.count()).where(_t.c.status == JobStatus(status).value)
    if type is not None:
        query = query.where(_t.c.type == type)
    if since is not None:
        query = query.where(_t.c.created_at >= since)
    with statements(db) as conn:
        return int(conn.execute(query).scalar_one())


def count_by_status_and_type(db: DB | Connection) -> dict[tuple[str, str], int]:
    query = select(_t.c.status, _t.c.type, func.count()).group_by(_t.c.status, _t.c.type)
    with statements(db) as conn:
        return {(s, ty): n for s, ty, n in conn.execute(query)}


def truncate_error(error: str) -> str:
    """The error as the row can store it: PostgreSQL text refuses NUL and UTF-8 refuses lone surrogates, and
    an exception message may hold either (handlers raise with whatever data they had), which would turn
    recording a failure into a failure."""
    error = error.replace("\x00", "\\x00")
    # A lone surrogate (from a decoded byte string, say) cannot be encoded to UTF-8 at all: escape it.
    error = error.encode("utf-8", errors="backslashreplace").decode("utf-8")
    if len(error) <= MAX_ERROR_CHARS:
        return error
    suffix = " …[truncated]"
    return error[: MAX_ERROR_CHARS - len(suffix)] + suffix
