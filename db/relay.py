"""The sweeper's relay: which jobs' messages to send (again), release or forget, and the record of sends.

A job's message can be lost between the database and SQS (a publisher that died after COMMIT, a send SQS
refused, a message that outlived its queue's retention). The sweeper finds those rows by the windows the
stack derives from the queue's settings (`ResendWindows`), marks them sent in the same statement that
chooses them (so two sweepers never take one job), and releases scheduled jobs when they come due. Every
publisher records its sends here too (`mark_sent`). Old history is pruned in bounded steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)

from .clock import utcnow
from .engine import DB, statements
from .models import Job, JobStatus, dependencies_table, jobs_table
from .states import FINISHED, HAS_ATTEMPTS, SPENT

_t = jobs_table
_d = dependencies_table
_job_id = bindparam("job_id", type_=_t.c.id.type)
_now = bindparam("now", type_=_t.c.updated_at.type)
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
    """The jobs of one worker pool, for the sweeper's per-pool windows: the types listed in `only`, or (the
    default pool) every type except those in `excluding`, less the jobs published to a priority lane
    (`lanes`); or, for a lane's own pool, the jobs published with its priority (`lane`)."""

    only: frozenset[str] | None = None
    excluding: frozenset[str] = frozenset()
    lanes: frozenset[str] = frozenset()
    lane: str | None = None

    def clause(self) -> ColumnElement[bool]:
        if self.lane is not None:
            return _t.c.priority == self.lane
        by_type: ColumnElement[bool]
        if self.only is not None:
            by_type = _t.c.type.in_(sorted(self.only))
        else:
            by_type = _t.c.type.not_in(sorted(self.excluding)) if self.excluding else true()
        if not self.lanes:
            return by_type
        return and_(by_type, or_(_t.c.priority.is_(None), _t.c.priority.not_in(sorted(self.lanes))))


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
    attempts_left = HAS_ATTEMPTS.clause()
    expired = _t.c.sent_at < now - windows.expired_after
    branches = [
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
    ]
    if job_types is not None:
        branches = [and_(job_types.clause(), branch) for branch in branches]
    due = or_(*branches)
    # Each status's oldest `limit` candidates by its own index (the failed one's is partial: only jobs with
    # attempts left), then the oldest `limit` of those, locked. One OR over the three would be planned as a
    # bitmap scan the planner overestimates on a large table (it cannot estimate attempts < max_attempts, a
    # comparison of two columns, and guesses a third of every failed row kept): past jit_above_cost, and JIT
    # compilation then cost 11 ms of a 12 ms statement at 10,000,000 rows (bench/table_scale.py).
    oldest = [select(_t.c.id).where(b).order_by(_t.c.updated_at).limit(limit).subquery() for b in branches]
    candidates = union_all(*(select(each.c.id) for each in oldest)).subquery()  # SQLite: LIMIT in subqueries
    # Rows another transaction is changing (a worker's claim or completion) are skipped, never waited for
    # while holding others: the next sweep sees them.
    chosen = (
        select(_t.c.id)
        .where(_t.c.id.in_(select(candidates.c.id)), due)
        .order_by(_t.c.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).scalar_subquery()
    stmt = (
        update(_t).where(_t.c.id.in_(chosen), due).values(sent_at=now, send_count=_t.c.send_count + 1).returning(*_t.c)
    )
    with statements(db) as conn:
        jobs = [Job.from_row(r) for r in conn.execute(stmt)]
    return sorted(jobs, key=lambda j: j.updated_at)


def take_due(
    db: DB | Connection,
    *,
    horizon: datetime,
    limit: int = 500,
    now: datetime | None = None,
    only: UUID | None = None,
) -> list[Job]:
    """Release the scheduled jobs due by `horizon` (earliest first, at most `limit`): each becomes `pending`
    and marked sent in one conditional UPDATE that skips rows another releaser holds, so concurrent
    sweepers never take a job twice; overdue ones (after downtime) are taken like the rest. The caller
    sends each message with the rest of its wait as DelaySeconds, and calls `unrelease` for what SQS refused.
    With `only`, that job alone (a publish that moved a scheduled job's run_at near: db/uniqueness.py).
    """
    now = now or utcnow()
    due = and_(_t.c.status == JobStatus.SCHEDULED.value, _t.c.run_at <= horizon)
    if only is not None:
        due = and_(due, _t.c.id == only)
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


def unsent_jobs(db: DB | Connection, job_ids: Sequence[UUID]) -> list[Job]:
    """Those of `job_ids` still pending with no message sent: what a worker sends after releasing them
    (db/dependencies.py). One that another process sent meanwhile is left out."""
    if not job_ids:
        return []
    query = select(_t).where(_t.c.id.in_(list(job_ids)), _t.c.status == JobStatus.PENDING.value, _t.c.sent_at.is_(None))
    with statements(db) as conn:
        return [Job.from_row(r) for r in conn.execute(query)]


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
            SPENT.clause(),
            (job_types or JobTypes()).clause(),
        )
        .order_by(_t.c.started_at)
        .limit(limit)
    )
    with statements(db) as conn:
        return [Job.from_row(r) for r in conn.execute(query)]


#: Statuses whose rows are history, never work: what pruning may delete.
PRUNABLE = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


def _no_unfinished_dependent() -> ColumnElement[bool]:
    """No job waits for this one that has not finished yet: one probe of job_dependencies' primary key
    (prerequisite first), which finds nothing for a job outside any workflow."""
    waiter = _t.alias("waiter")
    unfinished = (
        select(_d.c.job_id)
        .join(waiter, waiter.c.id == _d.c.job_id)
        .where(_d.c.prerequisite_id == _t.c.id, text(f"NOT {FINISHED.sql('waiter')}"))
    )
    return ~unfinished.exists()


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
    queued) and is never pruned; nor is a job that another, unfinished job waits for (a group's member
    before its callback ran: the callback reads its outcome). A pruned job's dependency rows go with it.
    Served by the (status, updated_at) index. With `dry_run`, counts instead.
    """
    if status not in PRUNABLE:
        raise ValueError(f"only {', '.join(s.value for s in PRUNABLE)} jobs can be pruned, not {status.value}")
    which = [_t.c.status == status.value, _t.c.updated_at < older_than, _no_unfinished_dependent()]
    if status is JobStatus.FAILED:
        which.append(SPENT.clause())
    with statements(db) as conn:
        if dry_run:
            return int(conn.execute(select(func.count()).where(*which)).scalar_one())
        chosen = select(_t.c.id).where(*which).order_by(_t.c.updated_at).limit(limit).scalar_subquery()
        return conn.execute(delete(_t).where(_t.c.id.in_(chosen))).rowcount
