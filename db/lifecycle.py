"""The worker's side of a job's lifecycle: claim → processing → completed | failed | cancelled.

Every state change is ONE conditional statement, so the database arbitrates races (two workers, a
duplicate SQS delivery, a zombie invocation) instead of a read-then-write in Python. Functions take a `DB`
(their own short transaction) or a `Connection` (the caller's transaction) first.

The claim rule (which rows a delivery may take) is db/states.py's CLAIMABLE: the plain claim, the claim that
rides with the previous job's completion, and the reason a claim missed all use its SQL.

Times come from the caller's clock (`now`, default: this machine's UTC time) rather than the server's, so
the same SQL runs on PostgreSQL and SQLite and tests can travel in time. Lambda hosts are NTP-synced; the
stale windows these times feed are minutes long.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, Connection, Integer, bindparam, column, select, text, update

from .clock import utcnow
from .dependencies import RELEASE_SQL, RELEASED_IDS_SQL, settle
from .engine import DB, statements
from .models import Job, JobStatus, jobs_table
from .rate_limits import Limiter, seconds_to_token, take_token, token_cte
from .states import CLAIMABLE, DUE, EXHAUSTED, RETRYABLE

MAX_ERROR_CHARS = 4000
_t = jobs_table


class ClaimOutcome(enum.StrEnum):
    CLAIMED = "claimed"  # this caller now owns the job: run it
    COMPLETED = "completed"  # a duplicate delivery of finished work: acknowledge, do not run
    BUSY = "busy"  # another live invocation holds it: retry later
    EXHAUSTED = "exhausted"  # failed (or died) on its last attempt: dead-letter it, do not run it again
    TYPE_MISMATCH = "type_mismatch"  # the message names another type than the row: the message is wrong
    NOT_FOUND = "not_found"  # no row (yet): the publisher's commit may not be visible; retry later
    CANCELLED = "cancelled"  # an operator cancelled it: acknowledge, do not run
    NOT_DUE = "not_due"  # pending with a run_at still ahead (a debounce moved it): return it until then
    THROTTLED = "throttled"  # its concurrency key has as many jobs running as allowed: return it, unclaimed
    RATE_LIMITED = "rate_limited"  # its limiter had no token: return it, unclaimed, until one is due


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    job: Job | None = None  # the row: as claimed, or as found when not claimed (None if NOT_FOUND)
    wait_seconds: float = 0.0  # RATE_LIMITED: until the limiter's next token is due


# The statements every job runs, built once with bind parameters: building and cache-keying a fresh
# statement per call was the largest share of a job's CPU when profiled (bench.cold_start measures jobs/s).
_job_id = bindparam("job_id", type_=_t.c.id.type)
_now = bindparam("now", type_=_t.c.updated_at.type)
_stale_before = bindparam("stale_before", type_=_t.c.started_at.type)
_due_by = bindparam("due_by", type_=_t.c.run_at.type)
#: A pending job is due once its run_at is no later than now plus this: hosts' clocks are NTP-synced, and a
#: message SQS delayed until run_at may arrive a hair before the worker's clock says so.
DUE_TOLERANCE = timedelta(seconds=2)
_job_type = bindparam("job_type", type_=_t.c.type.type)

# THE CLAIM RULE is db/states.py's CLAIMABLE (with DUE, RETRYABLE and EXHAUSTED beside it), used here as SQL
# text: the complete-and-claim CTE below is text (a Core CTE rendered 60% longer, with every constant as a
# parameter, and PostgreSQL parses each statement anew behind a transaction-mode pooler), and the plain claim
# and the missed claim's verdict use the same text.
_RETRYABLE_SQL = RETRYABLE.sql()
_DUE_SQL = DUE.sql()
_CLAIMABLE_SQL = CLAIMABLE.sql()
_EXHAUSTED_SQL = EXHAUSTED.sql()
_TAKE_SQL = (
    f"status = '{JobStatus.PROCESSING.value}', attempts = attempts + 1, started_at = :now, completed_at = NULL, "
    "updated_at = :now"
)

_CLAIM = (
    update(_t)
    .where(_t.c.id == _job_id, text(_CLAIMABLE_SQL).bindparams(_stale_before, _due_by))
    .values(
        status=JobStatus.PROCESSING.value,
        attempts=_t.c.attempts + 1,
        started_at=_now,
        completed_at=None,
        updated_at=_now,
    )
    .returning(*_t.c)
)
_CLAIM_OF_TYPE = _CLAIM.where(_t.c.type == _job_type)
# A missed claim reads the row once, with the rule's verdict computed by the database, to say why.
_MISSED = (
    # Columns by name, never `*`: a team's own extra column would shift a positional match.
    text(
        f"SELECT {', '.join(c.name for c in _t.c)}, {_EXHAUSTED_SQL} AS exhausted, "
        f"status = '{JobStatus.PENDING.value}' AND NOT {_DUE_SQL} AS not_due "
        "FROM background_jobs WHERE id = :job_id"
    )
    .bindparams(_stale_before, _job_id, _due_by)
    .columns(*_t.c, column("exhausted", Boolean), column("not_due", Boolean))
)
_COMPLETE = (
    update(_t)
    .where(_t.c.id == _job_id, _t.c.status == JobStatus.PROCESSING.value)
    .values(status=JobStatus.COMPLETED.value, completed_at=_now, updated_at=_now, error=None)
)
_COMPLETE_ATTEMPT = _COMPLETE.where(_t.c.attempts == bindparam("attempt", type_=_t.c.attempts.type))


# Completing one job and claiming the next in one statement (PostgreSQL): a data-modifying CTE, which a
# transaction-mode pooler passes through unchanged (unlike a server-side prepared statement). Both UPDATEs
# run, to completion, whatever the outer SELECT reads; the outer SELECT always returns one row, so the
# caller learns whether the completion took even when the claim found nothing. The statement locks two
# rows, so the claim never waits for its row (SKIP LOCKED): holding the completed row while waiting for
# one that a publisher's or another worker's statement holds could close a cycle (a deadlock, seen under
# load). A row another transaction is changing right now is reported BUSY and retried after a backoff.
#
# A job that others wait for (`has_dependents`, as claimed) completes with the settling variant: its
# dependents are counted down in the same statement (db/dependencies.py's RELEASE_SQL). Any other job
# completes with the lean variant, the statement it always was: a plain job took 1.34x its time when every
# completion carried the settling CTEs (planned anew for every statement behind a pooler); 1.0x now.
# The lean one still returns the row's `has_dependents` as it is when completed: a job that gained a
# dependent after its claim (`after=` naming it) is settled by one more statement (`settle`).
def _complete_and_claim_sql(settling: bool, limited: bool = False) -> Any:
    return (
        text(
            f"""
    WITH done AS (
        UPDATE background_jobs
        SET status = '{JobStatus.COMPLETED.value}', completed_at = :now, updated_at = :now, error = NULL,
            result = CAST(:done_result AS jsonb)
        WHERE id = :done_id AND status = '{JobStatus.PROCESSING.value}' AND attempts = :done_attempt
        RETURNING id, has_dependents
    ){_release(settling)}{_token(limited)}, claimed AS (
        UPDATE background_jobs
        SET {_TAKE_SQL}
        WHERE id = (SELECT id FROM background_jobs WHERE id = :job_id FOR UPDATE SKIP LOCKED)
          AND type = :job_type AND {_CLAIMABLE_SQL}{_WITH_TOKEN if limited else ""}
        RETURNING *
    )
    SELECT {", ".join(f"claimed.{c.name}" for c in _t.c)}, (SELECT count(*) FROM done) AS done_count,
        {_released(settling)}{_TOOK if limited else ""}
    FROM (VALUES (1)) AS one (x) LEFT JOIN claimed ON true
    """
        )
        .bindparams(_now, _stale_before, _due_by, bindparam("done_id", type_=_t.c.id.type), _job_id)
        .columns(*_t.c, column("done_count", Integer))
    )


# A rate-limited type's token rides on its claim (PostgreSQL): the `token` CTE takes one only if the job is
# claimable in the statement's snapshot, and the claim runs only if it took one. The outer SELECT says which
# happened: no token for a claimable job is RATE_LIMITED (one more read, for the wait, only then); no token
# for a job that is not claimable is the usual miss. A claim that still misses after taking a token (the row
# changed under it: BUSY) spends that token: the limit errs on the side of fewer starts, never more.
_JOB_CLAIMABLE_SQL = (
    f"EXISTS (SELECT 1 FROM background_jobs WHERE id = :job_id AND type = :job_type AND {_CLAIMABLE_SQL})"
)
_WITH_TOKEN = " AND EXISTS (SELECT 1 FROM token)"  # noqa: S105 - SQL, not a password
_TOOK = f", (SELECT count(*) FROM token) AS took, {_JOB_CLAIMABLE_SQL} AS claimable"


def _token(limited: bool) -> str:
    return f", {token_cte(_JOB_CLAIMABLE_SQL)}" if limited else ""


_CLAIM_WITH_TOKEN = (
    text(
        f"""
    WITH {token_cte(_JOB_CLAIMABLE_SQL)}, claimed AS (
        UPDATE background_jobs SET {_TAKE_SQL}
        WHERE id = :job_id AND type = :job_type AND {_CLAIMABLE_SQL}{_WITH_TOKEN}
        RETURNING *
    )
    SELECT {", ".join(f"claimed.{c.name}" for c in _t.c)}{_TOOK}
    FROM (VALUES (1)) AS one (x) LEFT JOIN claimed ON true
    """
    )
    .bindparams(_now, _stale_before, _due_by, _job_id)
    .columns(*_t.c)
)


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
    WITH done AS ({_COMPLETE_ONE_UPDATE}){_release(settling)}
    SELECT (SELECT count(*) FROM done) AS done_count, {_released(settling)}
    """
    ).bindparams(_now, _job_id)


def _release(settling: bool) -> str:
    return f", {RELEASE_SQL}" if settling else ""


def _released(settling: bool) -> str:
    """The settling variant's released dependents; the lean one's completed jobs that have dependents now."""
    if settling:
        return RELEASED_IDS_SQL
    return "ARRAY(SELECT id FROM done WHERE has_dependents) AS unsettled_ids"


_COMPLETE_AND_CLAIM = {
    (settling, limited): _complete_and_claim_sql(settling, limited)
    for settling in (False, True)
    for limited in (False, True)
}
_COMPLETE_ONE = {settling: _complete_one_sql(settling) for settling in (False, True)}


def claim_job(
    db: DB | Connection,
    job_id: UUID,
    *,
    stale_after: timedelta,
    job_type: str | None = None,
    now: datetime | None = None,
    limiter: Limiter | None = None,
) -> Claim:
    """Take the job for this invocation if the claim rule allows it (`_CLAIMABLE`).

    A `processing` row whose `started_at` is older than `stale_after` belongs to an invocation that died
    (timeout, crash); it is reclaimed and the attempt counts. A failed or abandoned job with no attempts
    left is not claimed (EXHAUSTED): `requeue_job` gives it new attempts when an operator retries it. The
    miss path reads the row once to tell the caller why; the common path is the single UPDATE.
    With `job_type`, a row of another type is never claimed (TYPE_MISMATCH). With `limiter` (a rate-limited
    type: `job_type` required), the claim also takes a token, in the same statement on PostgreSQL, or is
    RATE_LIMITED with the wait until the next one.
    """
    now = now or utcnow()
    stale_before = now - stale_after
    stmt, params = _CLAIM, {"job_id": job_id, "now": now, "stale_before": stale_before, "due_by": now + DUE_TOLERANCE}
    if job_type is not None:
        stmt, params = _CLAIM_OF_TYPE, params | {"job_type": job_type}
    with statements(db) as conn:
        if limiter is not None:
            assert job_type is not None, "a rate-limited claim names its type"
            if conn.dialect.name == "postgresql":
                both = conn.execute(_CLAIM_WITH_TOKEN, params | limiter.params()).one()
                if both.id is not None:
                    return Claim(ClaimOutcome.CLAIMED, Job.from_row(both))
                return _without_token(conn, both, job_id, job_type, limiter, stale_before, now)
            verdict = take_token(conn, limiter.name, per_second=limiter.per_second, burst=limiter.burst, now=now)
            if not verdict.taken:
                return Claim(ClaimOutcome.RATE_LIMITED, wait_seconds=verdict.wait_seconds)
        row = conn.execute(stmt, params).first()
        if row is not None:
            return Claim(ClaimOutcome.CLAIMED, Job.from_row(row))
        return _why_not_claimed(conn, job_id, job_type=job_type, stale_before=stale_before, now=now)


def _without_token(
    conn: Connection, row: Any, job_id: UUID, job_type: str, limiter: Limiter, stale_before: datetime, now: datetime
) -> Claim:
    """A rate-limited claim that took nothing: no token for a claimable job (RATE_LIMITED, with the wait), or
    a job the claim may not take (the usual verdict)."""
    if not row.took and row.claimable:
        return Claim(ClaimOutcome.RATE_LIMITED, wait_seconds=seconds_to_token(conn, limiter, now))
    return _why_not_claimed(conn, job_id, job_type=job_type, stale_before=stale_before, now=now)


_KEY_OF = text("SELECT concurrency_key, status FROM background_jobs WHERE id = :job_id").bindparams(_job_id)
_MAY_RUN = (JobStatus.PENDING.value, JobStatus.FAILED.value, JobStatus.PROCESSING.value)
_RUNNING_WITH_KEY = text(
    f"SELECT count(*) FROM background_jobs WHERE type = :job_type AND concurrency_key = :key "
    f"AND status = '{JobStatus.PROCESSING.value}' AND started_at >= :stale_before"
).bindparams(_stale_before)


def claim_keyed(
    db: DB,
    job_id: UUID,
    *,
    job_type: str,
    limit: int,
    stale_after: timedelta,
    now: datetime | None = None,
) -> Claim:
    """`claim_job`, for a type with a limit per concurrency key: only while fewer than `limit` jobs of the type
    with the job's key run (THROTTLED otherwise; a job without a key is claimed as usual). One transaction
    that first takes a transaction-scoped advisory lock on (type, key), so two claims of one key count one
    after the other, across every worker; a transaction-mode pooler keeps a transaction on one server
    connection. A claim gone stale (its invocation died) no longer holds a slot. BEGIN and five statements
    (the key, the lock, the count, the claim, COMMIT): only jobs of such types pay them (bench/flow_control.py)."""
    now = now or utcnow()
    with db.begin() as conn:
        row = conn.execute(_KEY_OF, {"job_id": job_id}).first()
        key = row.concurrency_key if row is not None and row.status in _MAY_RUN else None
        if key is not None:  # (a finished job's duplicate is told so by the claim, unlimited)
            if conn.dialect.name == "postgresql":
                lock = text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))")
                conn.execute(lock, {"name": f"jobstack:{job_type}:{key}"})
            running = conn.execute(
                _RUNNING_WITH_KEY, {"job_type": job_type, "key": key, "stale_before": now - stale_after}
            ).scalar_one()
            if running >= limit:
                return Claim(ClaimOutcome.THROTTLED)
        return claim_job(conn, job_id, stale_after=stale_after, job_type=job_type, now=now)


def _why_not_claimed(
    conn: Connection, job_id: UUID, *, job_type: str | None, stale_before: datetime, now: datetime
) -> Claim:
    """The claim missed: read the row once, with the claim rule's verdict, to tell the caller why."""
    params = {"job_id": job_id, "stale_before": stale_before, "due_by": now + DUE_TOLERANCE}
    current = conn.execute(_MISSED, params).first()
    if current is None:
        return Claim(ClaimOutcome.NOT_FOUND)
    job = Job.from_row(current)
    if job_type is not None and job.type != job_type:
        return Claim(ClaimOutcome.TYPE_MISMATCH, job)
    if job.status is JobStatus.COMPLETED:
        return Claim(ClaimOutcome.COMPLETED, job)
    if job.status is JobStatus.CANCELLED:
        return Claim(ClaimOutcome.CANCELLED, job)
    if current.exhausted:
        return Claim(ClaimOutcome.EXHAUSTED, job)
    if current.not_due:
        return Claim(ClaimOutcome.NOT_DUE, job)
    return Claim(ClaimOutcome.BUSY, job)


@dataclass(frozen=True)
class Finished:
    """A completion: whether it took (False: another invocation reclaimed the job meanwhile, or it is not
    processing), and the dependents it made pending, whose messages the caller sends (db/dependencies.py)."""

    completed: bool
    released: tuple[UUID, ...] = ()


def complete_and_claim(
    db: DB,
    done: tuple[UUID, int],
    job_id: UUID,
    *,
    stale_after: timedelta,
    job_type: str,
    result: str | None = None,
    dependents: bool = False,
    now: datetime | None = None,
    limiter: Limiter | None = None,
) -> tuple[Finished, Claim]:
    """`complete_job(done)` and `claim_job(job_id)` in one round trip and one commit (PostgreSQL only).

    `done` is (job id, attempt): the same fence as `complete_job`'s; `result` its handler's result as JSON
    text (`db.dependencies.encode_result`); `dependents`: whether the job had dependents when claimed
    (`Job.has_dependents`): True settles them in this statement; False (always correct) is the lean
    statement, which reads the mark back and settles any in one more. Returns the completion (with the dependents it
    released) and the claim, exactly as `claim_job` would return it. `done` and `job_id` must differ (one
    statement may not change a row twice). With `limiter`, the claim also takes its token in the statement
    (RATE_LIMITED without one, as `claim_job`).
    """
    assert done[0] != job_id, "complete and claim the same job in two statements"
    now = now or utcnow()
    stale_before = now - stale_after
    params: dict[str, Any] = {
        "now": now, "stale_before": stale_before, "due_by": now + DUE_TOLERANCE, "done_id": done[0],
        "done_attempt": done[1],
        "job_id": job_id, "job_type": job_type, "done_result": result,
    }  # fmt: skip
    if limiter is not None:
        params |= limiter.params()
    with statements(db) as conn:
        row = conn.execute(_COMPLETE_AND_CLAIM[dependents, limiter is not None], params).one()
        if row.id is not None:
            claim = Claim(ClaimOutcome.CLAIMED, Job.from_row(row))
        elif limiter is not None:
            claim = _without_token(conn, row, job_id, job_type, limiter, stale_before, now)
        else:
            claim = _why_not_claimed(conn, job_id, job_type=job_type, stale_before=stale_before, now=now)
    # After the connection is back: any settling is its own transaction, on a connection of its own.
    return _finished(db, row, dependents, now), claim


# Batched completion (a pool's `completion: batched`): a batch's claims in one statement, its successes in
# another. The claim keeps each row's state from before it (status, started_at), so a claim the batch does
# not use (a record deferred for lack of time) is handed back as it was, its attempt not spent.
_CLAIM_MANY = text(
    f"""
    UPDATE background_jobs AS t
    SET {_TAKE_SQL}
    FROM (
        SELECT id AS claimed_id, status AS previous_status, started_at AS previous_started_at
        FROM background_jobs
        JOIN unnest(CAST(:ids AS uuid[]), CAST(:types AS varchar[])) AS wanted (wanted_id, wanted_type)
          ON id = wanted_id AND type = wanted_type
        WHERE {_CLAIMABLE_SQL}
        FOR UPDATE OF background_jobs SKIP LOCKED
    ) AS before
    WHERE t.id = before.claimed_id
    RETURNING t.*, before.previous_status, before.previous_started_at
    """
).bindparams(_now, _stale_before, _due_by)


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
    WITH done AS ({_COMPLETE_MANY_UPDATE}){_release(settling)}
    SELECT ARRAY(SELECT id FROM done) AS done_ids, {_released(settling)}
    """
    ).bindparams(_now)


_COMPLETE_MANY = {settling: _complete_many_sql(settling) for settling in (False, True)}


@dataclass(frozen=True)
class HeldClaim:
    """A job claimed by `claim_many`, and its row's state before the claim (to hand it back unused)."""

    job: Job
    previous_status: str
    previous_started_at: datetime | None


def in_one_statement(db: DB) -> bool:
    """Whether a completion can ride on the next claim (`complete_and_claim`) and a batch's claims and
    successes be one statement each (`claim_many`, `complete_many`): PostgreSQL's data-modifying CTEs.
    SQLite has none, so its callers claim and complete one job at a time. Decided here, in the database
    layer, so the worker never asks which database it runs on."""
    return db.dialect == "postgresql"


def claim_many(
    db: DB, wanted: list[tuple[UUID, str]], *, stale_after: timedelta, now: datetime | None = None
) -> dict[UUID, HeldClaim]:
    """Claim every (job id, type) the claim rule allows, in one statement (PostgreSQL). A row another
    transaction holds is skipped, never waited for; the caller claims the misses one by one (`claim_job`),
    which also says why each missed."""
    if not wanted:
        return {}
    now = now or utcnow()
    params = {
        "ids": [job_id for job_id, _ in wanted], "types": [t for _, t in wanted],
        "now": now, "stale_before": now - stale_after, "due_by": now + DUE_TOLERANCE,
    }  # fmt: skip
    with statements(db) as conn:
        rows = conn.execute(_CLAIM_MANY, params).all()
    return {row.id: HeldClaim(Job.from_row(row), row.previous_status, row.previous_started_at) for row in rows}


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


def release_claims(db: DB, held: list[HeldClaim]) -> int:
    """Hand claims the batch did not use back as they were: status and started_at restored, the attempt
    not spent. Only a row still processing on that attempt (nobody took it since)."""
    released = 0
    with statements(db) as conn:
        for claim in held:
            stmt = (
                update(_t)
                .where(
                    _t.c.id == claim.job.id,
                    _t.c.status == JobStatus.PROCESSING.value,
                    _t.c.attempts == claim.job.attempts,
                )
                .values(
                    status=claim.previous_status,
                    attempts=_t.c.attempts - 1,
                    started_at=claim.previous_started_at,
                    updated_at=claim.job.updated_at,
                )
            )
            released += conn.execute(stmt).rowcount
    return released


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
    """Complete a processing job with its result (JSON text, `db.dependencies.encode_result`) and settle its
    dependents: in the same statement on PostgreSQL when it had some when claimed (`dependents`, else the
    lean statement and, for one that gained a dependent since, `settle`); on SQLite, in one transaction (the
    caller's, given one)."""
    now = now or utcnow()
    if (db.dialect.name if isinstance(db, Connection) else db.dialect) == "postgresql":
        params = {"job_id": job_id, "now": now, "attempt": attempt, "result": result}
        with statements(db) as conn:
            if dependents:
                return _finished(db, conn.execute(_COMPLETE_ONE[True], params).one(), True, now)
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


def _finished(db: DB | Connection, row: Any, settled: bool, now: datetime) -> Finished:
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
