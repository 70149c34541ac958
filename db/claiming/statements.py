"""The claim's statements, each built once (with bind parameters) and named: docs/statements.md prints every
one as the driver sends it (`make statements`), for review.

THE CLAIM RULE is db/states.py's CLAIMABLE (with DUE and EXHAUSTED beside it), used here as SQL text: the
complete-and-claim CTE is text (a Core CTE rendered 60% longer, with every constant as a parameter, and
PostgreSQL parses each statement anew behind a transaction-mode pooler), and the plain claim and the missed
claim's verdict use the same text. Building and cache-keying a fresh statement per call was the largest
share of a job's CPU when profiled (bench.cold_start measures jobs/s): a gate's statements are built the
first time a plan asks for them and kept (`functools.cache`).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Boolean, Integer, column, text, update

from ..dependencies import settled_columns, settling_ctes
from ..models import Job, JobStatus, jobs_table
from ..states import CLAIMABLE, DUE, EXHAUSTED
from .gate import GateSql
from .params import (
    DONE_ID,
    DUE_BY,
    JOB_ID,
    JOB_TYPE,
    NOW,
    REQUEST_ID,
    SILENT_BEFORE,
    STALE_BEFORE,
    TRACE_ID,
    Invocation,
)

_t = jobs_table
_COLUMNS = ", ".join(c.name for c in _t.c)  # by name, never `*`: a team's own extra column would shift a match
_CLAIMABLE_SQL = CLAIMABLE.sql()
#: What a claim sets: the job is this invocation's (named by its request and trace ids), its attempt counted,
#: its first heartbeat stamped.
TAKE_SQL = (
    f"status = '{JobStatus.PROCESSING.value}', attempts = attempts + 1, started_at = :now, completed_at = NULL, "
    "updated_at = :now, heartbeat_at = :now, request_id = :request_id, trace_id = :trace_id"
)
#: The columns a claim sets to what it knows (TAKE_SQL): the claimed job's are filled in by `claimed_job`, not
#: sent back. A claim returns only the rest: each column a result carries costs the driver and the database on
#: every claim (psycopg describes every column of every statement's result).
SET_BY_CLAIM = ("status", "started_at", "completed_at", "updated_at", "heartbeat_at", "request_id", "trace_id")
CLAIMED = [c for c in _t.c if c.name not in SET_BY_CLAIM]
_CLAIMED_NAMES = [c.name for c in CLAIMED]
_CLAIMED_SQL = ", ".join(_CLAIMED_NAMES)


def claimed_job(row: Any, now: datetime, invocation: Invocation) -> Job:
    """The job a claim took: the row's own columns as the claim returned them, and what TAKE_SQL set at `now`
    for `invocation`."""
    m = row._mapping
    return Job(
        **{name: m[name] for name in _CLAIMED_NAMES},
        status=JobStatus.PROCESSING,
        started_at=now,
        completed_at=None,
        updated_at=now,
        heartbeat_at=now,
        request_id=invocation.request_id,
        trace_id=invocation.trace_id,
    )


#: The delivery's job, of its type, is claimable now: what a riding gate makes its work depend on. Read once, in
#: a CTE of its own, which every gate and verdict reads (the statement is planned anew on every call behind a
#: pooler: each copy of the rule written out was planned again).
_JOB_CLAIMABLE_CTE = (
    f", claimable_job AS (SELECT 1 FROM background_jobs WHERE id = :job_id AND type = :job_type AND {_CLAIMABLE_SQL})"
)
_JOB_CLAIMABLE_SQL = "EXISTS (SELECT 1 FROM claimable_job)"

#: The claim with no gate riding on it: one UPDATE, the row back if it took.
CLAIM = (
    update(_t)
    .where(_t.c.id == JOB_ID, text(_CLAIMABLE_SQL).bindparams(STALE_BEFORE, SILENT_BEFORE, DUE_BY))
    .values(
        status=JobStatus.PROCESSING.value,
        attempts=_t.c.attempts + 1,
        started_at=NOW,
        completed_at=None,
        updated_at=NOW,
        heartbeat_at=NOW,
        request_id=REQUEST_ID,
        trace_id=TRACE_ID,
    )
    .returning(*CLAIMED)
)
CLAIM_OF_TYPE = CLAIM.where(_t.c.type == JOB_TYPE)

#: A missed claim reads the row once, with the rule's verdict computed by the database, to say why.
MISSED = (
    text(
        f"SELECT {_COLUMNS}, {EXHAUSTED.sql()} AS exhausted, "
        f"status = '{JobStatus.PENDING.value}' AND NOT {DUE.sql()} AS not_due "
        "FROM background_jobs WHERE id = :job_id"
    )
    .bindparams(STALE_BEFORE, SILENT_BEFORE, JOB_ID, DUE_BY)
    .columns(*_t.c, column("exhausted", Boolean), column("not_due", Boolean))
)


def _with(gates: tuple[GateSql, ...]) -> tuple[str, str, str]:
    """The gates' CTEs (each led by a comma), their conditions on the claim, and their verdict columns."""
    rendered = [gate.render(_JOB_CLAIMABLE_SQL) for gate in gates]
    return (
        (_JOB_CLAIMABLE_CTE if gates else "") + "".join(f", {g.cte}" for g in rendered),
        "".join(g.condition for g in rendered),
        "".join(g.verdict for g in rendered),
    )


@cache
def claim_with(gates: tuple[GateSql, ...]) -> Any:
    """The claim with gates (one at least) riding on it (PostgreSQL): the outer SELECT always returns one row, with the
    claimed row's columns (NULL when it took nothing) and the gates' verdicts."""
    ctes, conditions, verdicts = _with(gates)
    return (
        text(
            f"""
    WITH {ctes.removeprefix(", ")}, claimed AS (
        UPDATE background_jobs SET {TAKE_SQL}
        WHERE id = :job_id AND type = :job_type AND {_CLAIMABLE_SQL}{conditions}
        RETURNING {_CLAIMED_SQL}
    )
    SELECT {", ".join(f"claimed.{name}" for name in _CLAIMED_NAMES)}{verdicts}
    FROM (VALUES (1)) AS one (x) LEFT JOIN claimed ON true
    """
        )
        .bindparams(NOW, STALE_BEFORE, SILENT_BEFORE, DUE_BY, JOB_ID, REQUEST_ID, TRACE_ID)
        .columns(*CLAIMED)
    )


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
@cache
def complete_and_claim(settling: bool, gates: tuple[GateSql, ...] = ()) -> Any:
    ctes, conditions, verdicts = _with(gates)
    return (
        text(
            f"""
    WITH done AS (
        UPDATE background_jobs
        SET status = '{JobStatus.COMPLETED.value}', completed_at = :now, updated_at = :now, error = NULL,
            result = CAST(:done_result AS jsonb)
        WHERE id = :done_id AND status = '{JobStatus.PROCESSING.value}' AND attempts = :done_attempt
        RETURNING id, has_dependents
    ){settling_ctes(settling)}{ctes}, claimed AS (
        UPDATE background_jobs
        SET {TAKE_SQL}
        WHERE id = (SELECT id FROM background_jobs WHERE id = :job_id FOR UPDATE SKIP LOCKED)
          AND type = :job_type AND {_CLAIMABLE_SQL}{conditions}
        RETURNING {_CLAIMED_SQL}
    )
    SELECT {", ".join(f"claimed.{name}" for name in _CLAIMED_NAMES)}, (SELECT count(*) FROM done) AS done_count,
        {settled_columns(settling)}{verdicts}
    FROM (VALUES (1)) AS one (x) LEFT JOIN claimed ON true
    """
        )
        .bindparams(NOW, STALE_BEFORE, SILENT_BEFORE, DUE_BY, DONE_ID, JOB_ID, REQUEST_ID, TRACE_ID)
        .columns(*CLAIMED, column("done_count", Integer))
    )


# A batch's claims in one statement (a pool's `completion: batched`). The claim keeps each row's state from
# before it (status, started_at, heartbeat_at), so a claim the batch does not use (a record deferred for
# lack of time) is handed back as it was, its attempt not spent.
CLAIM_MANY = text(
    f"""
    UPDATE background_jobs AS t
    SET {TAKE_SQL}
    FROM (
        SELECT id AS claimed_id, status AS previous_status, started_at AS previous_started_at,
               heartbeat_at AS previous_heartbeat_at, request_id AS previous_request_id,
               trace_id AS previous_trace_id
        FROM background_jobs
        JOIN unnest(CAST(:ids AS uuid[]), CAST(:types AS varchar[])) AS wanted (wanted_id, wanted_type)
          ON id = wanted_id AND type = wanted_type
        WHERE {_CLAIMABLE_SQL}
        FOR UPDATE OF background_jobs SKIP LOCKED
    ) AS before
    WHERE t.id = before.claimed_id
    RETURNING {", ".join(f"t.{name}" for name in _CLAIMED_NAMES)}, before.previous_status,
        before.previous_started_at, before.previous_heartbeat_at, before.previous_request_id,
        before.previous_trace_id
    """
).bindparams(NOW, STALE_BEFORE, SILENT_BEFORE, DUE_BY, REQUEST_ID, TRACE_ID)
