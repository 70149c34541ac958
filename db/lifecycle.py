"""The worker's side of a job's lifecycle after its claim: processing → completed | failed | snoozed | cancelled.

Every state change is ONE conditional statement, so the database arbitrates races (two workers, a
duplicate SQS delivery, a zombie invocation) instead of a read-then-write in Python. Functions take a `DB`
(their own short transaction) or a `Connection` (the caller's transaction) first. The claim that puts a
job in `processing` is db/claiming/ (the claim rule, and the gates a type composes with it).

Times come from the caller's clock (`now`, default: this machine's UTC time) rather than the server's, so
the same SQL runs on PostgreSQL and SQLite and tests can travel in time. Lambda hosts are NTP-synced; the
stale windows these times feed are minutes long.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, bindparam, select, text, update

from .clock import utcnow
from .dependencies import settle, settled_columns, settling_ctes
from .engine import DB, dialect_of, statements
from .exceptions import DatabaseUnavailable, JobstackError
from .models import JobStatus, jobs_table
from .waits import park

MAX_ERROR_CHARS = 4000
_t = jobs_table

#: The largest result a handler may return, as JSON: results live in the job's row, read by the next step.
RESULT_MAX_BYTES = 64 * 1024


class ResultNotStorable(JobstackError):
    """A handler returned something that cannot be stored as its result."""


def encode_result(value: Any) -> str | None:
    """The handler's return value as the JSON text its row stores (None: nothing to store). Refused with one
    line when it is not JSON or larger than RESULT_MAX_BYTES: a result is for the next step to read, not
    a place for bulk data (put that in S3 and return its key)."""
    if value is None:
        return None
    try:
        encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ResultNotStorable(
            f"the handler returned a result that is not JSON ({err}): return a dict, list, str, number or None"
        ) from None
    size = len(encoded.encode("utf-8"))
    if size > RESULT_MAX_BYTES:
        raise ResultNotStorable(
            f"the handler returned a {size}-byte result; results are limited to {RESULT_MAX_BYTES} bytes: store "
            "large data elsewhere (S3) and return its key"
        )
    return encoded


# The completion statements, built once with bind parameters: building and cache-keying a fresh statement
# per call was the largest share of a job's CPU when profiled (bench.cold_start measures jobs/s).
_job_id = bindparam("job_id", type_=_t.c.id.type)
_now = bindparam("now", type_=_t.c.updated_at.type)
_COMPLETE = (
    update(_t)
    .where(_t.c.id == _job_id, _t.c.status == JobStatus.PROCESSING.value)
    .values(status=JobStatus.COMPLETED.value, completed_at=_now, updated_at=_now, error=None)
)
_COMPLETE_ATTEMPT = _COMPLETE.where(_t.c.attempts == bindparam("attempt", type_=_t.c.attempts.type))


#: Completing one job alone (PostgreSQL): the end of a batch, a transactional handler's transaction.
_COMPLETE_ONE_UPDATE = f"""
    UPDATE background_jobs
    SET status = '{JobStatus.COMPLETED.value}', completed_at = :now, updated_at = :now, error = NULL,
        result = CAST(:result AS jsonb)
    WHERE id = :job_id AND status = '{JobStatus.PROCESSING.value}'
      AND (CAST(:attempt AS integer) IS NULL OR attempts = :attempt)
    RETURNING id, has_dependents
    """


def _complete_one_sql(settling: bool) -> Any:
    """The lean variant is the plain UPDATE (one row back, with its mark); the settling one wraps it in a WITH
    (one row back, with the dependents it released)."""
    if not settling:
        return text(_COMPLETE_ONE_UPDATE).bindparams(_now, _job_id)
    return text(
        f"""
    WITH done AS ({_COMPLETE_ONE_UPDATE}){settling_ctes(settling)}
    SELECT (SELECT count(*) FROM done) AS done_count, {settled_columns(settling)}
    """
    ).bindparams(_now, _job_id)


_COMPLETE_ONE = {settling: _complete_one_sql(settling) for settling in (False, True)}


@dataclass(frozen=True)
class Finished:
    """A completion: whether it took (False: another invocation reclaimed the job meanwhile, or it is not
    processing), and the dependents it made pending, whose messages the caller sends (db/dependencies.py)."""

    completed: bool
    released: tuple[UUID, ...] = ()


_COMPLETE_MANY_UPDATE = f"""
    UPDATE background_jobs AS t
    SET status = '{JobStatus.COMPLETED.value}', completed_at = :now, updated_at = :now, error = NULL,
        result = CAST(finished.result AS jsonb)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:attempts AS integer[]), CAST(:results AS text[]))
        AS finished (id, attempt, result)
    WHERE t.id = finished.id AND t.attempts = finished.attempt AND t.status = '{JobStatus.PROCESSING.value}'
    RETURNING t.id, t.has_dependents
    """


def _complete_many_sql(settling: bool) -> Any:
    """The lean variant is the plain UPDATE it was (a row per job completed, with its mark)."""
    if not settling:
        return text(_COMPLETE_MANY_UPDATE).bindparams(_now)
    return text(
        f"""
    WITH done AS ({_COMPLETE_MANY_UPDATE}){settling_ctes(settling)}
    SELECT ARRAY(SELECT id FROM done) AS done_ids, {settled_columns(settling)}
    """
    ).bindparams(_now)


_COMPLETE_MANY = {settling: _complete_many_sql(settling) for settling in (False, True)}


def in_one_statement(db: DB | Connection) -> bool:
    """Whether a completion can ride on the next claim (`complete_and_claim`) and a batch's claims and
    successes be one statement each (`claim_many`, `complete_many`): PostgreSQL's data-modifying CTEs.
    SQLite has none, so its callers claim and complete one job at a time. Decided here, in the database
    layer, so the worker never asks which database it runs on."""
    return dialect_of(db) == "postgresql"


@dataclass(frozen=True)
class FinishedMany:
    completed: frozenset[UUID]  # the ids completed (one missing was reclaimed meanwhile: its result stands)
    released: tuple[UUID, ...] = ()  # dependents made pending, whose messages the caller sends


def complete_many(
    db: DB,
    done: list[tuple[UUID, int]],
    *,
    results: list[str | None] | None = None,
    dependents: bool = False,
    now: datetime | None = None,
) -> FinishedMany:
    """Complete every (job id, attempt) still processing on that attempt, in one statement (PostgreSQL), each
    with its result (JSON text, or None). With `dependents` (one of them had dependents when claimed), the
    same statement settles them; otherwise the lean statement, and `settle` for any that gained one since."""
    if not done:
        return FinishedMany(frozenset())
    now = now or utcnow()
    params = {
        "ids": [i for i, _ in done], "attempts": [a for _, a in done],
        "results": results if results is not None else [None] * len(done), "now": now,
    }  # fmt: skip
    with statements(db) as conn:
        if dependents:
            row = conn.execute(_COMPLETE_MANY[True], params).one()
            return FinishedMany(frozenset(row.done_ids or ()), tuple(row.released_ids or ()))
        rows = conn.execute(_COMPLETE_MANY[False], params).all()
    late = [r.id for r in rows if r.has_dependents]  # gained since the claim: settled in its own transaction
    return FinishedMany(frozenset(r.id for r in rows), tuple(settle(db, late, now=now).released) if late else ())


def complete_job(db: DB | Connection, job_id: UUID, *, attempt: int | None = None, now: datetime | None = None) -> bool:
    """Mark a processing job completed. With `attempt`, only if no later claim took it over (a fence
    against a zombie invocation settling work another invocation now owns). True if the row changed.
    Its dependents are settled too; `finish_job` also says which it released."""
    return finish_job(db, job_id, attempt=attempt, now=now).completed


def finish_job(
    db: DB | Connection,
    job_id: UUID,
    *,
    attempt: int | None = None,
    result: str | None = None,
    dependents: bool = False,
    now: datetime | None = None,
) -> Finished:
    """Complete a processing job with its result (JSON text, `db.lifecycle.encode_result`) and settle its
    dependents: in the same statement on PostgreSQL when it had some when claimed (`dependents`, else the
    lean statement and, for one that gained a dependent since, `settle`); on SQLite, in one transaction (the
    caller's, given one)."""
    now = now or utcnow()
    if in_one_statement(db):
        params = {"job_id": job_id, "now": now, "attempt": attempt, "result": result}
        with statements(db) as conn:
            if dependents:
                return finished_from_row(db, conn.execute(_COMPLETE_ONE[True], params).one(), True, now)
            rows = conn.execute(_COMPLETE_ONE[False], params).all()
        late = [r.id for r in rows if r.has_dependents]  # gained since the claim: settled in its own transaction
        return Finished(len(rows) == 1, tuple(settle(db, late, now=now).released) if late else ())
    params = {"job_id": job_id, "now": now} | ({} if attempt is None else {"attempt": attempt})
    stmt = _COMPLETE if attempt is None else _COMPLETE_ATTEMPT
    if result is not None:
        stmt = stmt.values(result=json.loads(result))
    if isinstance(db, Connection):
        return _complete_here(db, stmt, params, job_id, now)
    with db.begin() as conn:
        return _complete_here(conn, stmt, params, job_id, now)


def finished_from_row(db: DB | Connection, row: Any, settled: bool, now: datetime) -> Finished:
    """The completion a statement's row reports; a lean statement's completed jobs that have dependents
    after all (gained since their claim) are settled now, in the same transaction if there is one."""
    completed = getattr(row, "done_count", 1) == 1
    if settled:
        return Finished(completed, tuple(row.released_ids or ()))
    late = list(row.unsettled_ids or ())
    return Finished(completed, tuple(settle(db, late, now=now).released) if late else ())


def _complete_here(conn: Connection, stmt: Any, params: dict[str, Any], job_id: UUID, now: datetime) -> Finished:
    if conn.execute(stmt, params).rowcount != 1:
        return Finished(False)
    return Finished(True, tuple(settle(conn, [job_id], now=now).released))


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


def snooze_job(
    db: DB | Connection, job_id: UUID, *, attempt: int, run_at: datetime, now: datetime | None = None
) -> bool:
    """The handler asked to run again at `run_at`: pending again with that run_at and the attempt given back
    (a snooze is not a failure). Only the invocation holding that claim; True if the row changed. The claim
    rule's due check keeps it from running before run_at, whenever its message comes back."""
    stmt = (
        update(_t)
        .where(_t.c.id == job_id, _t.c.status == JobStatus.PROCESSING.value, _t.c.attempts == attempt)
        .values(
            status=JobStatus.PENDING.value,
            attempts=_t.c.attempts - 1,
            run_at=run_at,
            started_at=None,
            error=None,
            updated_at=now or utcnow(),
        )
    )
    with statements(db) as conn:
        return conn.execute(stmt).rowcount == 1


def stamp_heartbeats(db: DB | Connection, job_ids: list[UUID], *, since: datetime, now: datetime | None = None) -> int:
    """The invocation holding these jobs is alive: stamp those it claimed (processing, claimed at or after
    `since`, its batch's start), so the claim rule (db/states.py: STALE) does not take them for dead. One
    UPDATE; the rows stamped."""
    if not job_ids:
        return 0
    stmt = (
        update(_t)
        .where(_t.c.id.in_(job_ids), _t.c.status == JobStatus.PROCESSING.value, _t.c.started_at >= since)
        .values(heartbeat_at=now or utcnow())
    )
    with statements(db) as conn:
        return conn.execute(stmt).rowcount


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


class Ending(enum.StrEnum):
    """How an attempt ends other than in success, as the worker decided it: what the row becomes."""

    UNRUNNABLE = "unrunnable"  # its type cannot run in this deployment: failed (only a row of that type)
    EXHAUSTED = "exhausted"  # no attempt left: failed with the reason if still processing; settled
    INVALID = "invalid"  # its payload fails its schema: failed on this attempt; settled
    FAILED = "failed"  # its handler raised: cancelled if an operator asked, else failed; settled if for good
    SNOOZED = "snoozed"  # its handler asked to run again at `run_at`: pending again, the attempt given back
    #: It waits for the signal `wait_key` until `run_at` (waiting), or for `run_at` itself (scheduled): no message
    #: until a signal, its timeout or its time releases it (db/waits.py), the attempt given back.
    WAITS = "waits"


@dataclass(frozen=True)
class AttemptEnd:
    """An attempt's end, for `end_attempt`: the job, the attempt it ends (None: no claim, UNRUNNABLE), and
    what the ending needs: the error; `run_at` for SNOOZED; for FAILED whether it is for good (no attempt
    left: its dependents are settled); for EXHAUSTED whether its row is still `processing` (its invocation
    died: it is failed now)."""

    ending: Ending
    job_id: UUID
    attempt: int | None = None
    error: str = ""
    job_type: str | None = None
    run_at: datetime | None = None
    for_good: bool = True
    running: bool = False
    wait_key: str | None = None


@dataclass(frozen=True)
class Ended:
    """What `end_attempt` did: whether the row changed as asked (False: another invocation owns it now, or it
    had nothing to change), whether an operator's cancel turned a failure into a cancellation, and the
    dependents it released (their messages are the caller's to send)."""

    changed: bool
    cancelled: bool = False
    released: tuple[UUID, ...] = ()


def end_attempt(db: DB, end: AttemptEnd) -> Ended:
    """Move the row as the ending says: each ending is one or two conditional statements (above), then, for
    a job that finished for good, the jobs waiting for it are settled. The worker decides the ending; this is
    the one place that carries it out."""
    job_id, attempt = end.job_id, end.attempt
    if end.ending is Ending.UNRUNNABLE:  # a row of another type is somebody else's: left alone
        return Ended(fail_job(db, job_id, end.error, job_type=end.job_type))
    if end.ending is Ending.WAITS:
        assert attempt is not None, "a wait ends a claimed attempt"
        assert end.run_at is not None, "a wait lasts until a time"
        return Ended(park(db, job_id, attempt=attempt, key=end.wait_key, until=end.run_at) is not None)
    if end.ending is Ending.SNOOZED:
        assert attempt is not None, "a snooze ends a claimed attempt"
        assert end.run_at is not None, "a snooze says when to run again"
        return Ended(snooze_job(db, job_id, attempt=attempt, run_at=end.run_at))
    assert attempt is not None
    if end.ending is Ending.FAILED and cancel_running(db, job_id, attempt=attempt):
        return Ended(True, cancelled=True, released=_settled(db, job_id))  # asked to stop, and it stopped
    if end.ending is Ending.EXHAUSTED and not end.running:  # failed already: only its dependents to settle
        return Ended(False, released=_settled(db, job_id))
    changed = fail_job(db, job_id, end.error, attempt=attempt)
    return Ended(changed, released=_settled(db, job_id) if end.for_good else ())


def _settled(db: DB, job_id: UUID) -> tuple[UUID, ...]:
    """Settle the jobs waiting for one that finished for good (failed or cancelled). Dependents released
    (on_failure "continue") are the caller's to send. If this fails, the sweeper settles them later
    (db.dependencies.unsettled_finished)."""
    try:
        return tuple(settle(db, [job_id]).released)
    except DatabaseUnavailable:
        return ()


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
