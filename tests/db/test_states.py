"""The job's derived states (db/states.py), each defined once: its SQL, its SQLAlchemy expression and its
Python predicate give the same answer over the same rows, on both databases (tests/db/test_states_unit.py: no
other module writes a rule again)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, select, text

from db import DB, JobStatus, get_job, utcnow
from db.models import UTCDateTime, jobs_table
from db.states import CLAIMABLE, DUE, EXHAUSTED, RETRYABLE, STALE, STATES
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration

_STALE = ("stale_before", "silent_before")
CLOCKED = {DUE: ("due_by",), STALE: _STALE, RETRYABLE: _STALE, EXHAUSTED: _STALE, CLAIMABLE: ("due_by", *_STALE)}


def test_each_state_answers_the_same_as_sql_as_core_and_in_python(any_db: DB) -> None:
    now = utcnow()
    clock = {
        "due_by": now + timedelta(seconds=2),
        "stale_before": now - timedelta(minutes=5),
        "silent_before": now - timedelta(seconds=30),
    }
    for status, attempts, run_at, started_at in itertools.product(
        JobStatus,
        (0, 2, 3),  # of max_attempts 3: unused, one left, spent
        (None, now - timedelta(minutes=1), now + timedelta(hours=1)),
        (None, now - timedelta(minutes=10), now),
    ):
        # the heartbeat decides only for a processing row: never stamped, silent, alive
        heartbeats = (None, now - timedelta(minutes=1), now) if status is JobStatus.PROCESSING else (None,)
        for heartbeat_at in heartbeats:
            insert_job(any_db, status=status, attempts=attempts, max_attempts=3, run_at=run_at, started_at=started_at,
                       heartbeat_at=heartbeat_at)  # fmt: skip
    with any_db.begin() as conn:
        ids = list(conn.execute(select(jobs_table.c.id)).scalars())
    jobs = [get_job(any_db, job_id) for job_id in ids]
    for state in STATES:
        params: dict[str, Any] = {name: clock[name] for name in CLOCKED.get(state, ())}
        with any_db.begin() as conn:
            as_sql = set(
                conn.execute(
                    text(f"SELECT id FROM background_jobs WHERE {state.sql()}")
                    .bindparams(*(bindparam(name, type_=UTCDateTime) for name in params))  # SQLite: UTC text
                    .columns(id=jobs_table.c.id.type),
                    params,
                ).scalars()
            )
            as_core = set(conn.execute(select(jobs_table.c.id).where(state.clause(**params))).scalars())
        in_python = {job.id for job in jobs if job is not None and state(job, **params)}
        assert as_sql == as_core == in_python, state.name
        assert 0 < len(as_sql) < len(ids), f"{state.name}: the rows must tell it apart"
