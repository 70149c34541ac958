"""Jobs that wait for other jobs: the rule that settles a finished job's dependents, and handlers' results.

A dependent row is `waiting` with `waiting_on` = the number of its prerequisites not yet finished. When a
prerequisite finishes, its `job_dependencies` rows are settled (stamped, once: `settled_at IS NULL` is the
fence) and each dependent's count drops by the rows settled for it. The statement that takes the count to
zero makes the dependent `pending` and stamps its `run_at` with that moment (a waiting job has no run_at
of its own), so its queue wait starts at its release, not at its publish: a callback that waited an hour
for its members did not wait an hour in the queue. PostgreSQL locks the dependent's row, so of two
members of a group that finish at the same instant the second sees the first's decrement, and exactly one
of them releases the callback. A prerequisite that fails for good or is cancelled cancels a dependent whose
`on_failure` is "cancel" at once (and, through it, that one's own dependents), or counts like a success for
"continue".

- A success settles in the statement that completes it (`RELEASE_SQL`, a pair of CTEs that ride on the
  completion: no extra round trip; db/lifecycle.py), so "the last member finished" is decided in the same
  commit as the member's completion.
- Anything else (a failure for good, a cancellation, SQLite, a sweeper's repair) goes through `settle`:
  a few statements in one transaction, idempotent, safe to call for a job that has not finished (it does
  nothing). The sweeper calls it for prerequisites that finished with unsettled rows (a worker died
  between a failure and `settle`), so nothing waits forever.

A released dependent's message is sent by whoever released it, after the commit; if that process dies
first, the row is `pending` and unsent, and the sweeper's outbox relay sends it (db/relay.py).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, Connection, Text, bindparam, select, text, update

from .clock import utcnow
from .engine import DB, statements
from .models import JobStatus, dependencies_table, jobs_table
from .states import FINISHED

_t = jobs_table
_d = dependencies_table


class OnFailure(enum.StrEnum):
    CANCEL = "cancel"  # a prerequisite that fails for good (or is cancelled) cancels this job
    CONTINUE = "continue"  # this job runs anyway once every prerequisite finished; it reads their outcomes


#: CTEs that follow a CTE named `done` (the ids of jobs this statement completed) in a PostgreSQL statement:
#: settle their dependency rows and make pending each dependent whose last prerequisite this was. The
#: statement's caller reads `released` (id, status) for the dependents whose count reached zero.
RELEASE_SQL = f"""
    settled_edges AS (
        UPDATE job_dependencies SET settled_at = :now
        WHERE prerequisite_id IN (SELECT id FROM done) AND settled_at IS NULL
        RETURNING job_id
    ), released AS (
        UPDATE background_jobs AS w
        SET waiting_on = w.waiting_on - e.n,
            status = CASE WHEN w.waiting_on = e.n THEN '{JobStatus.PENDING.value}' ELSE w.status END,
            updated_at = CASE WHEN w.waiting_on = e.n THEN :now ELSE w.updated_at END,
            run_at = CASE WHEN w.waiting_on = e.n THEN :now ELSE w.run_at END
        FROM (SELECT job_id, count(*) AS n FROM settled_edges GROUP BY job_id) AS e
        WHERE w.id = e.job_id AND w.status = '{JobStatus.WAITING.value}'
        RETURNING w.id, w.status
    )"""
#: The released dependents' ids, as one array column of the statement's one row.
RELEASED_IDS_SQL = f"ARRAY(SELECT id FROM released WHERE status = '{JobStatus.PENDING.value}') AS released_ids"


def settling_ctes(settling: bool) -> str:
    """What follows a completion's `done` CTE: RELEASE_SQL when the statement settles dependents (the
    settling variant), nothing for the lean one."""
    return f", {RELEASE_SQL}" if settling else ""


def settled_columns(settling: bool) -> str:
    """The settling variant's released dependents; the lean one's completed jobs that have dependents now
    (gained since their claim: the caller settles them with `settle`)."""
    if settling:
        return RELEASED_IDS_SQL
    return "ARRAY(SELECT id FROM done WHERE has_dependents) AS unsettled_ids"


_CANCELS = f":cancel AND on_failure = '{OnFailure.CANCEL.value}'"
#: One dependent's count, down by the rows just settled for it: pending at zero, cancelled at once when one
#: of them failed and it cancels on failure, else still waiting. Only a waiting row moves.
_COUNT_DOWN = text(
    f"""
    UPDATE background_jobs
    SET waiting_on = waiting_on - :n,
        status = CASE WHEN {_CANCELS} THEN '{JobStatus.CANCELLED.value}'
                      WHEN waiting_on = :n THEN '{JobStatus.PENDING.value}' ELSE status END,
        error = CASE WHEN {_CANCELS} THEN :reason ELSE error END,
        updated_at = CASE WHEN waiting_on = :n OR ({_CANCELS}) THEN :now ELSE updated_at END,
        run_at = CASE WHEN {_CANCELS} THEN run_at WHEN waiting_on = :n THEN :now ELSE run_at END
    WHERE id = :id AND status = '{JobStatus.WAITING.value}'
    RETURNING status
    """
).bindparams(
    bindparam("now", type_=_t.c.updated_at.type),
    bindparam("id", type_=_t.c.id.type),
    bindparam("cancel", type_=Boolean()),
    bindparam("reason", type_=Text()),
)


@dataclass
class Settled:
    """What settling did: dependents now pending (their messages are the caller's to send) and cancelled."""

    released: list[UUID] = field(default_factory=list)
    cancelled: list[UUID] = field(default_factory=list)


def settle(db: DB | Connection, job_ids: Sequence[UUID], *, now: datetime | None = None, wait: bool = False) -> Settled:
    """Settle the dependents of those of `job_ids` that have finished, following cancellations down their own
    dependents. One transaction (the caller's, given a Connection): a dependent's count and its settled rows
    change together. With `wait`, each prerequisite's row is locked first (PostgreSQL), so a completion in
    flight is waited for and counted: how a publisher with `after=` closes the race with a prerequisite
    that finished while it wrote (db/workflows.py)."""
    if not job_ids:
        return Settled()
    if isinstance(db, Connection):
        return _settle(db, list(job_ids), now or utcnow(), wait)
    with db.begin() as conn:
        return _settle(conn, list(job_ids), now or utcnow(), wait)


def _settle(conn: Connection, frontier: list[UUID], now: datetime, wait: bool) -> Settled:
    done = Settled()
    while frontier:
        query = select(_t.c.id, _t.c.status).where(_t.c.id.in_(sorted(set(frontier))), text(FINISHED.sql()))
        if wait:
            query = query.with_for_update(read=True)
        finished = {row.id: row.status for row in conn.execute(query)}
        wait = False  # dependents cancelled below are this transaction's own rows
        if not finished:
            break
        edges = conn.execute(
            update(_d)
            .where(_d.c.prerequisite_id.in_(sorted(finished)), _d.c.settled_at.is_(None))
            .values(settled_at=now)
            .returning(_d.c.job_id, _d.c.prerequisite_id)
        ).all()
        counts: dict[UUID, int] = {}
        failed: dict[UUID, UUID] = {}
        for dependent, prerequisite in edges:
            counts[dependent] = counts.get(dependent, 0) + 1
            if finished[prerequisite] != JobStatus.COMPLETED.value:
                failed.setdefault(dependent, prerequisite)
        frontier = []
        for dependent in sorted(counts):  # one order for every settler: no lock cycle between two
            reason = None
            if dependent in failed:
                reason = f"cancelled: job {failed[dependent]}, which it waited for, ended {finished[failed[dependent]]}"
            params = {"n": counts[dependent], "cancel": dependent in failed, "reason": reason, "id": dependent}
            status = conn.execute(_COUNT_DOWN, params | {"now": now}).scalar()
            if status == JobStatus.PENDING.value:
                done.released.append(dependent)
            elif status == JobStatus.CANCELLED.value:
                done.cancelled.append(dependent)
                frontier.append(dependent)
    return done


def unsettled_finished(db: DB | Connection, *, limit: int = 500) -> list[UUID]:
    """Prerequisites that finished but whose dependency rows were never settled (a process died between a
    failure and `settle`): the sweeper settles them. The partial index of unsettled rows serves it."""
    query = text(
        f"""
        SELECT DISTINCT d.prerequisite_id FROM job_dependencies AS d
        JOIN background_jobs AS p ON p.id = d.prerequisite_id
        WHERE d.settled_at IS NULL AND {FINISHED.sql("p")}
        LIMIT :limit
        """
    ).columns(prerequisite_id=_d.c.prerequisite_id.type)  # a UUID on SQLite too, where the column is text
    with statements(db) as conn:
        return list(conn.execute(query, {"limit": limit}).scalars())


@dataclass(frozen=True)
class Dependency:
    """One job another waited for, as its dependent reads it: a group's member for its callback, a chain's
    previous step, a job named in `after=`."""

    job_id: UUID
    type: str
    status: JobStatus
    result: Any
    error: str | None


def dependencies_of(db: DB | Connection, job_id: UUID) -> list[Dependency]:
    """The jobs `job_id` waits (or waited) for, in the order they were given: one query on the
    (job_id, position) index. A pruned prerequisite is no longer listed."""
    return _related(db, _d.c.prerequisite_id, _d.c.job_id == job_id, _d.c.position)


def dependents_of(db: DB | Connection, job_id: UUID) -> list[Dependency]:
    """The jobs that wait (or waited) for `job_id`: a member's callback, a chain step's next."""
    return _related(db, _d.c.job_id, _d.c.prerequisite_id == job_id, _t.c.created_at, _t.c.id)


def _related(db: DB | Connection, joined: Any, which: Any, *order: Any) -> list[Dependency]:
    query = (
        select(_t.c.id, _t.c.type, _t.c.status, _t.c.result, _t.c.error)
        .join(_d, joined == _t.c.id)
        .where(which)
        .order_by(*order)
    )
    with statements(db) as conn:
        return [Dependency(r.id, r.type, JobStatus(r.status), r.result, r.error) for r in conn.execute(query)]
