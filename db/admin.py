"""The operators' queries: find, list, count, retry and cancel jobs (`jobstack` CLI, the DLQ redrive).

Reads are bounded (keyset pages, counts by index) so they stay cheap on a large table; every change is one
conditional statement, so a job that moves meanwhile is reported as what it became.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Connection, Select, func, literal, select, text, tuple_, update

from .clock import utcnow
from .dependencies import settle
from .engine import DB, statements
from .models import Job, JobStatus, jobs_table
from .payload_search import PayloadContains, payload_document
from .relay import JobTypes
from .states import FAILED_FOR_GOOD, FINISHED

_t = jobs_table


def existing_job_ids(db: DB | Connection, job_ids: Sequence[UUID]) -> set[UUID]:
    """Which of `job_ids` have a row: one query for a batch, instead of a read per id."""
    if not job_ids:
        return set()
    with statements(db) as conn:
        return set(conn.execute(select(_t.c.id).where(_t.c.id.in_(list(set(job_ids))))).scalars())


def job_query(job_id: UUID) -> Select[Any]:
    """One job by id: the primary key's index."""
    return select(_t).where(_t.c.id == job_id)


def get_job(db: DB | Connection, job_id: UUID) -> Job | None:
    with statements(db) as conn:
        row = conn.execute(job_query(job_id)).first()
    return Job.from_row(row) if row else None


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a list shows. Every field narrows; each is served by an index (status/type/created_at,
    the partial idempotency-key index, the primary key for an id prefix), so a page reads its own rows."""

    status: JobStatus | None = None
    type: str | None = None
    #: A pool's jobs: the types routed to it (`only_types`), or for the default pool every type routed
    #: nowhere else (`except_types`). Pools are a routing of types; the row has no pool column.
    only_types: tuple[str, ...] | None = None
    except_types: tuple[str, ...] = ()
    #: A priority lane's jobs (`lane`: those published with its priority); a type pool's leave out the jobs
    #: published to any of `lanes` (they run in the lane's pool). The sweeper's rule (db/relay.py JobTypes).
    lane: str | None = None
    lanes: tuple[str, ...] = ()
    created_from: datetime | None = None
    created_to: datetime | None = None
    idempotency_key: str | None = None
    id_prefix: str | None = None
    #: A group's or chain's jobs (`jobstack list --group ID`): the partial workflow_id index.
    workflow_id: UUID | None = None
    #: Jobs whose payload contains this JSON object (canonical text from db/payload_search.py's
    #: `payload_document`): the GIN index of migration 0013 on PostgreSQL.
    payload: str | None = None
    #: One tenant's jobs (the console's tenants page links here): the partial tenant/status index.
    tenant: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.status is not None:
            where.append(_t.c.status == JobStatus(self.status).value)
        if self.type is not None:
            where.append(_t.c.type == self.type)
        if self.only_types is not None or self.except_types or self.lane is not None or self.lanes:
            pool = JobTypes(
                only=None if self.only_types is None else frozenset(self.only_types),
                excluding=frozenset(self.except_types), lanes=frozenset(self.lanes), lane=self.lane,
            )  # fmt: skip
            where.append(pool.clause())
        if self.created_from is not None:
            where.append(_t.c.created_at >= self.created_from)
        if self.created_to is not None:
            where.append(_t.c.created_at < self.created_to)
        if self.idempotency_key is not None:
            where.append(_t.c.idempotency_key == self.idempotency_key)
        if self.id_prefix:
            low, high = id_prefix_range(self.id_prefix)
            where.append(_t.c.id.between(low, high))
        if self.workflow_id is not None:
            where.append(_t.c.workflow_id == self.workflow_id)
        if self.payload is not None:
            where.append(PayloadContains(_t.c.payload, payload_document(self.payload)))
        if self.tenant is not None:
            where.append(_t.c.tenant == self.tenant)
        return where


def id_prefix_range(prefix: str) -> tuple[UUID, UUID]:
    """The first and last job id that start with `prefix` (hex digits, dashes ignored): a range on the
    primary key, where LIKE on a uuid column would read every row."""
    digits = prefix.replace("-", "").lower()
    if not digits or len(digits) > 32 or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError(f"id prefix {prefix[:40]!r} is not the start of a job id: give 1-32 hex digits, e.g. 3f2a")
    return UUID(digits.ljust(32, "0")), UUID(digits.ljust(32, "f"))


def job_ids_starting(db: DB | Connection, prefix: str, *, limit: int = 2) -> list[UUID]:
    """The ids of at most `limit` jobs whose id starts with `prefix` (what a cut table shows): one range read
    of the primary key. ValueError (one line) for a prefix that cannot start a job id."""
    low, high = id_prefix_range(prefix)
    with statements(db) as conn:
        return list(conn.execute(select(_t.c.id).where(_t.c.id.between(low, high)).limit(limit)).scalars())


@dataclass(frozen=True)
class Cursor:
    """Where a page of a newest-first list ended: its last job's (created_at, id). The next page starts
    strictly after it, by the index, never by OFFSET (which reads and discards every row before the page)."""

    created_at: datetime
    id: UUID

    def encode(self) -> str:
        return f"{self.created_at.isoformat()}~{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            when, job_id = text.split("~", 1)
            created_at = datetime.fromisoformat(when)
            return cls(created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC), UUID(job_id))
        except ValueError:
            raise ValueError(f"page cursor {text[:60]!r} is not one this list gave: start again") from None


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next: Cursor | None  # None: this was the last page


def page_query(which: JobFilter, *, after: Cursor | None = None, limit: int = 50) -> Select[Any]:
    """The rows of one page, and one more (to know whether another page follows)."""
    query = select(_t).where(*which.clauses()).order_by(_t.c.created_at.desc(), _t.c.id.desc()).limit(limit + 1)
    if after is not None:
        query = query.where(
            _t.c.created_at <= after.created_at,  # the index's range; the tuple below settles ties
            tuple_(_t.c.created_at, _t.c.id)
            < tuple_(literal(after.created_at, _t.c.created_at.type), literal(after.id, _t.c.id.type)),
        )
    return query


def count_matching(db: DB, which: JobFilter, *, limit: int) -> int:
    """How many jobs `which` matches, counted up to `limit` + 1 (ids only, by the list's own index: no payload
    is read), so a caller can tell "at most `limit`" from "more"."""
    ids = page_query(which, limit=limit).with_only_columns(_t.c.id).subquery()
    with db.autocommit() as conn:
        return int(conn.execute(select(func.count()).select_from(ids)).scalar_one())


def page_jobs(db: DB | Connection, which: JobFilter, *, after: Cursor | None = None, limit: int = 50) -> JobPage:
    """One page of jobs, newest first (created_at, then id, both descending), after `after`."""
    with statements(db) as conn:
        jobs = [Job.from_row(r) for r in conn.execute(page_query(which, after=after, limit=limit))]
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return JobPage(jobs, Cursor(jobs[-1].created_at, jobs[-1].id) if more else None)


def list_jobs(
    db: DB | Connection,
    *,
    status: JobStatus | str | None = None,
    type: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    workflow_id: UUID | None = None,
    payload: str | None = None,
) -> list[Job]:
    """Newest first: the first page of `page_jobs`. `payload`: a search document (db/payload_search.py)."""
    which = JobFilter(
        status=JobStatus(status) if status is not None else None,
        type=type,
        created_from=since,
        workflow_id=workflow_id,
        payload=payload,
    )
    return page_jobs(db, which, limit=limit).jobs


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
        allowed = FAILED_FOR_GOOD.clause()
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
        return FAILED_FOR_GOOD(self)


def job_states(db: DB | Connection, job_ids: Sequence[UUID]) -> dict[UUID, JobState]:
    """Each existing job's state, one query for a batch (a DLQ redrive's view of its letters)."""
    if not job_ids:
        return {}
    columns = (_t.c.id, _t.c.status, _t.c.attempts, _t.c.max_attempts, _t.c.sent_at)
    with statements(db) as conn:
        rows = conn.execute(select(*columns).where(_t.c.id.in_(list(set(job_ids)))))
        return {r.id: JobState(JobStatus(r.status), r.attempts, r.max_attempts, r.sent_at) for r in rows}


@dataclass(frozen=True)
class CancelReport:
    cancelled: list[UUID]  # pending or waiting for a retry: they will not run
    asked_to_stop: list[UUID]  # running now: their handler is asked to stop (ctx.cancel_requested())
    refused: dict[UUID, str]  # completed (or already cancelled): id -> its status
    missing: list[UUID]
    #: Jobs that waited for a cancelled one with on_failure "continue": pending now, their messages unsent
    #: (the caller sends them, or the sweeper's relay does after its unsent window).
    released: list[UUID] = field(default_factory=list)


def cancel_jobs(db: DB | Connection, job_ids: Sequence[UUID], *, now: datetime | None = None) -> CancelReport:
    """Cancel jobs: a pending, waiting or failed one never runs again (its message is acknowledged unrun); a
    running one is asked to stop (`cancel_requested_at`) and otherwise allowed to finish; a completed one is
    refused. Three conditional statements, so a job that changes state meanwhile is counted as what it
    became; then the jobs waiting for the cancelled ones are settled (cancelled in turn, or released)."""
    now = now or utcnow()
    ids = list(dict.fromkeys(job_ids))
    waiting = [JobStatus.PENDING.value, JobStatus.FAILED.value, JobStatus.SCHEDULED.value, JobStatus.WAITING.value]
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
    settled = settle(db, cancelled, now=now)
    return CancelReport(
        cancelled=cancelled + [i for i in settled.cancelled if i not in done],
        asked_to_stop=asked,
        refused={i: str(found[i]) for i in rest if i in found},
        missing=[i for i in rest if i not in found],
        released=settled.released,
    )


def waited_for(db: DB | Connection, job_ids: Sequence[UUID]) -> list[UUID]:
    """Those of `job_ids` other jobstack wait for (`has_dependents`): the only ones whose cancel can release a job
    that must then be sent, so a caller without a queue can refuse before it writes."""
    if not job_ids:
        return []
    query = select(_t.c.id).where(_t.c.id.in_(list(dict.fromkeys(job_ids))), _t.c.has_dependents).order_by(_t.c.id)
    with statements(db) as conn:
        return list(conn.execute(query).scalars())


def unfinished_in_workflow(db: DB | Connection, workflow_id: UUID) -> list[UUID]:
    """The jobs of a group or chain that have not finished (what `jobstack cancel --group` cancels)."""
    query = select(_t.c.id).where(_t.c.workflow_id == workflow_id, text(f"NOT {FINISHED.sql()}")).order_by(_t.c.id)
    with statements(db) as conn:
        return list(conn.execute(query).scalars())


def oldest_pending_query(which: JobFilter | None = None) -> Select[Any]:
    """The oldest pending job's created_at (of those `which` matches: a pool's types, say)."""
    clauses = which.clauses() if which is not None else []
    return select(func.min(_t.c.created_at)).where(_t.c.status == JobStatus.PENDING.value, *clauses)


def oldest_pending(db: DB | Connection, which: JobFilter | None = None) -> datetime | None:
    """When the oldest pending job was created: one `min()` however many are waiting (the status/created_at
    index, read in order)."""
    with statements(db) as conn:
        value = conn.execute(oldest_pending_query(which)).scalar()
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
