"""A job's durable steps: the journal that lets a later attempt, or a later invocation of the same attempt,
skip the steps that already ran, and the progress a running job reports.

A step is journaled when it finishes, in its own statement (`record_step`), only while the attempt that ran
it still holds the job: a step finished by an invocation that lost the job (taken over after it looked
dead) is not journaled, so the journal only ever holds results of the attempt that owned the row then. A
transactional step journals in the transaction that holds its own writes: both commit, or neither.
Deleting a job (pruning) deletes its steps (the table's foreign key cascades).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, bindparam, delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from .clock import utcnow
from .engine import DB, statements
from .models import JobStatus, jobs_table, steps_table

_t, _s = jobs_table, steps_table
#: A step's name: what the journal matches it by, so a handler's steps can be checked against it.
STEP_NAME_MAX = 128
PROGRESS_MESSAGE_MAX = 255


@dataclass(frozen=True)
class Step:
    """One journaled step: its place in the job's order, its name, its result as JSON text (None: it
    returned nothing), the attempt that ran it, and when."""

    position: int
    name: str
    result: str | None
    attempt: int
    started_at: datetime
    finished_at: datetime


#: How `jobstack show` and the console list a job's steps: one row each (`step_row`).
STEP_COLUMNS = ("step", "name", "attempt", "started", "took", "result")


def step_row(step: Step) -> tuple[object, ...]:
    took = step.finished_at - step.started_at
    size = "none" if step.result is None else f"{len(step.result.encode())} bytes"
    return (step.position + 1, step.name, step.attempt, step.started_at, f"{took.total_seconds():.3f} s", size)


def journal(db: DB | Connection, job_id: UUID) -> list[Step]:
    """The job's completed steps, in the order they ran. One indexed read (the table's primary key)."""
    query = select(_s).where(_s.c.job_id == job_id).order_by(_s.c.position)
    with statements(db) as conn:
        return [Step(r.position, r.name, r.result, r.attempt, r.started_at, r.finished_at) for r in conn.execute(query)]


def _record_statement() -> Any:
    """INSERT ... SELECT the step's row WHERE the attempt still holds the job, RETURNING its place (an
    INSERT's rowcount is -1): built once, its parameters bound per call."""
    holder = exists().where(
        _t.c.id == bindparam("job_id"), _t.c.status == JobStatus.PROCESSING.value, _t.c.attempts == bindparam("attempt")
    )
    row = select(
        bindparam("job_id", type_=_s.c.job_id.type),
        bindparam("position", type_=_s.c.position.type),
        bindparam("name", type_=_s.c.name.type),
        bindparam("result", type_=_s.c.result.type),
        bindparam("attempt", type_=_s.c.attempt.type),
        bindparam("started_at", type_=_s.c.started_at.type),
        bindparam("finished_at", type_=_s.c.finished_at.type),
    ).where(holder)
    columns = ["job_id", "position", "name", "result", "attempt", "started_at", "finished_at"]
    return insert(_s).from_select(columns, row).returning(_s.c.position)


_RECORD = _record_statement()


def record_step(
    db: DB | Connection,
    job_id: UUID,
    *,
    attempt: int,
    position: int,
    name: str,
    result: str | None,
    started_at: datetime,
    now: datetime | None = None,
) -> bool:
    """Journal a finished step, only while `attempt` still holds the job (processing, on that attempt): True
    if written. False: another invocation took the job over (its own run stands), or a step of that place
    or name was journaled meanwhile."""
    params = {"job_id": job_id, "position": position, "name": name, "result": result, "attempt": attempt,
              "started_at": started_at, "finished_at": now or utcnow()}  # fmt: skip
    with statements(db) as conn:
        try:
            return conn.execute(_RECORD, params).first() is not None
        except IntegrityError:
            return False


def forget_steps(db: DB | Connection, job_ids: Sequence[UUID]) -> int:
    """Delete the journal of these jobs (an operator's retry from scratch): their next run runs every step."""
    if not job_ids:
        return 0
    with statements(db) as conn:
        return conn.execute(delete(_s).where(_s.c.job_id.in_(list(job_ids)))).rowcount


def report_progress(db: DB | Connection, job_id: UUID, *, attempt: int, progress: float, message: str | None) -> bool:
    """Store what a running job reports, while `attempt` holds it: True if stored."""
    stmt = (
        update(_t)
        .where(_t.c.id == job_id, _t.c.status == JobStatus.PROCESSING.value, _t.c.attempts == attempt)
        .values(progress=progress, progress_message=message)
    )
    with statements(db) as conn:
        return conn.execute(stmt).rowcount == 1
