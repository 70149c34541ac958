"""What operators read of the jobs table (`jobstack stats`, the console): counts by state and type, throughput
per minute, and queue-wait and run-time percentiles per type.

Every read is bounded, because the console refreshes every few seconds against a table of millions of
rows. A state is counted exactly when PostgreSQL's planner expects at most `COUNT_CAP` rows in it (live work
usually); past that its total is the planner's estimate, and its split by type is the estimate shared out
by the types of its `TYPE_SAMPLE` most recent rows, both marked as estimates. Finished jobs are counted over
a recent window (the status/updated_at index), and percentiles come from the most recent `TIMING_SAMPLE`
completions. An exact count of ten million completed rows would scan them on every refresh, for a number
nobody reads to the unit (bench/table_scale.py: the GROUP BY it replaced took 11x as long at 300,000 rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import quantiles
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Connection, Select, case, cast, func, literal_column, select
from sqlalchemy.types import Integer

from .clock import utcnow
from .engine import DB, statements
from .models import JobStatus, dependencies_table, jobs_table
from .plans import estimated_rows
from .queue_wait import queue_wait
from .states import FAILED_FOR_GOOD, SPENT

_t = jobs_table

#: Past this many rows in one state, its total is the planner's estimate and its per-type numbers are
#: lower bounds (the rows counted before the cap).
COUNT_CAP = 2_000

#: A state over COUNT_CAP is split by type in the proportions of this many of its most recent rows.
TYPE_SAMPLE = 500

#: The completions that percentiles are computed from (the most recent ones in the window).
TIMING_SAMPLE = 5_000

_spent = SPENT.clause()


@dataclass(frozen=True)
class State:
    """One column of the overview's table: a status, or a part of one (failed: retrying or for good)."""

    name: str
    label: str
    status: JobStatus
    finished: bool = False  # counted over the recent window only

    def where(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = [_t.c.status == self.status.value]
        if self.name == "retrying":
            clauses.append(~_spent)
        elif self.name == "dead":
            clauses.append(_spent)
        return clauses


STATES = (
    State("pending", "pending", JobStatus.PENDING),
    State("scheduled", "scheduled", JobStatus.SCHEDULED),
    State("waiting", "waiting for other jobs", JobStatus.WAITING),
    State("processing", "running", JobStatus.PROCESSING),
    State("retrying", "failed, retrying", JobStatus.FAILED),
    State("dead", "failed for good", JobStatus.FAILED),
    State("completed", "completed", JobStatus.COMPLETED, finished=True),
    State("cancelled", "cancelled", JobStatus.CANCELLED, finished=True),
)


@dataclass(frozen=True)
class Counts:
    window: timedelta  # finished states are counted over this window
    by_type: dict[str, dict[str, int]]  # type -> state name -> jobs (an estimate's share where estimated)
    totals: dict[str, int]  # state name -> jobs
    estimated: frozenset[str]  # states whose total is the planner's estimate (over COUNT_CAP rows)
    at_least: frozenset[str] = frozenset()  # states counted up to COUNT_CAP + 1 only: lower bounds
    estimates: bool = True  # the database has a planner's estimate past the cap (PostgreSQL; SQLite has none)


def job_counts(
    db: DB | Connection, *, window: timedelta = timedelta(hours=24), now: datetime | None = None, cap: int = COUNT_CAP
) -> Counts:
    """Jobs per state and type: waiting and failed ones all-time, finished ones over `window`."""
    since = (now or utcnow()) - window
    by_type: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    estimated: set[str] = set()
    at_least: set[str] = set()
    with statements(db) as conn:
        for state in STATES:
            expected = _expected(conn, state, since, totals)
            if expected <= cap:
                rows = conn.execute(count_query(state, since, cap)).all()
                total = sum(n for _, n in rows)
                for job_type, n in rows:
                    by_type.setdefault(job_type, {})[state.name] = n
                totals[state.name] = total
                if total > cap:  # a lower bound: PostgreSQL's statistics are behind (a backlog that just grew),
                    at_least.add(state.name)  # or SQLite, which has no estimate
                continue
            sample = conn.execute(sample_query(state, since)).scalars().all()
            for job_type in set(sample):
                share = round(expected * sample.count(job_type) / len(sample))
                by_type.setdefault(job_type, {})[state.name] = share
            totals[state.name] = expected
            estimated.add(state.name)
        estimates = conn.dialect.name == "postgresql"
    return Counts(window, dict(sorted(by_type.items())), totals, frozenset(estimated), frozenset(at_least), estimates)


def _where(state: State, since: datetime) -> list[ColumnElement[bool]]:
    return state.where() + ([_t.c.updated_at >= since] if state.finished else [])


def _expected(conn: Connection, state: State, since: datetime, counted: dict[str, int]) -> int:
    """How many rows PostgreSQL's planner expects in `state` (0: count them; SQLite always counts). The
    planner has no statistics for `attempts < max_attempts`, a comparison of two columns, and guesses a third
    of the failed rows: so failed jobs that will be retried (live work, with an index of their own) are
    always counted, and failed for good is all failed jobs less those, counted before it."""
    if conn.dialect.name != "postgresql" or state.name == "retrying":
        return 0
    if state.name == "dead":
        failed = estimated_rows(conn, select(_t.c.id).where(_t.c.status == JobStatus.FAILED.value))
        return max(failed - counted.get("retrying", 0), 0)
    return estimated_rows(conn, select(_t.c.id).where(*_where(state, since)))


def sample_query(state: State, since: datetime) -> Select[Any]:
    """The types of the state's TYPE_SAMPLE most recent rows (the status/updated_at index, newest first)."""
    return select(_t.c.type).where(*_where(state, since)).order_by(_t.c.updated_at.desc()).limit(TYPE_SAMPLE)


def count_query(state: State, since: datetime, cap: int = COUNT_CAP) -> Select[Any]:
    """Jobs in `state` per type, reading at most `cap` + 1 rows (finished states: changed since `since`)."""
    capped = select(_t.c.type).where(*_where(state, since)).limit(cap + 1).subquery()
    return select(capped.c.type, func.count()).group_by(capped.c.type)


@dataclass(frozen=True)
class Bucket:
    start: datetime
    completed: int = 0
    failed: int = 0  # failed attempts with attempts left (their retry is queued)
    dead: int = 0  # failed for good: the worker dead-letters these


def throughput(
    db: DB | Connection, *, window: timedelta, bucket: timedelta, now: datetime | None = None
) -> list[Bucket]:
    """Jobs that completed, failed, or failed for good, per `bucket`, over the last `window`, oldest first.

    Read from each row's last change (the status/updated_at index), so a job counts once, in the state it is
    in now: a failure that was retried since counts as its later outcome.
    """
    now = now or utcnow()
    seconds = int(bucket.total_seconds())
    first = int((now - window).timestamp()) // seconds
    with statements(db) as conn:
        query = throughput_query(conn.dialect.name, first * seconds, seconds)
        rows = conn.execute(query).all()
    last = int(now.timestamp()) // seconds
    counts: dict[int, dict[str, int]] = {n: {} for n in range(first, last + 1)}
    for index, status, spent, n in rows:
        name = "completed" if status == JobStatus.COMPLETED.value else ("dead" if spent else "failed")
        if int(index) in counts:
            counts[int(index)][name] = counts[int(index)].get(name, 0) + n
    return [Bucket(datetime.fromtimestamp(n * seconds, UTC), **c) for n, c in counts.items()]


def throughput_query(dialect: str, since_epoch: int, seconds: int) -> Select[Any]:
    """(bucket, status, failed for good, jobs) of completed and failed rows changed since `since_epoch`."""
    rows_of = (
        select(
            _bucket_of(dialect, seconds).label("slot"),
            _t.c.status.label("status"),
            case((_spent, literal_column("1")), else_=literal_column("0")).label("spent"),
        )
        .where(
            _t.c.status.in_([JobStatus.COMPLETED.value, JobStatus.FAILED.value]),
            _t.c.updated_at >= datetime.fromtimestamp(since_epoch, UTC),
        )
        .subquery()
    )
    return select(rows_of.c.slot, rows_of.c.status, rows_of.c.spent, func.count()).group_by(
        rows_of.c.slot, rows_of.c.status, rows_of.c.spent
    )


def _bucket_of(dialect: str, seconds: int) -> ColumnElement[Any]:
    """The row's bucket number (its last change, in whole buckets since the epoch), in the dialect's terms."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", _t.c.updated_at) / literal_column(str(seconds))), Integer)
    return cast(func.strftime("%s", _t.c.updated_at), Integer) / literal_column(str(seconds))


@dataclass(frozen=True)
class Timing:
    type: str
    jobs: int  # completions the figures come from
    wait_p50: float | None  # seconds from publish (or run_at) to the first attempt's start
    wait_p95: float | None
    run_p50: float  # seconds from the last attempt's start to completion
    run_p95: float


def timings(
    db: DB | Connection, *, window: timedelta, now: datetime | None = None, sample: int = TIMING_SAMPLE
) -> list[Timing]:
    """Queue wait and run time per type, p50 and p95, over the most recent `sample` completions in `window`.

    Queue wait is db/queue_wait.py's rule (first attempts only), the worker's JobQueueWait metric's too.
    """
    query = timings_query((now or utcnow()) - window, sample)
    waits: dict[str, list[float]] = {}
    runs: dict[str, list[float]] = {}
    with statements(db) as conn:
        for job_type, created, run_at, started, completed, attempts in conn.execute(query):
            if started is None or completed is None:
                continue
            runs.setdefault(job_type, []).append((completed - started).total_seconds())
            wait = queue_wait(created, run_at, started, attempts)
            if wait is not None:
                waits.setdefault(job_type, []).append(wait.total_seconds())
    return [
        Timing(
            job_type,
            len(runs[job_type]),
            percentile(waits.get(job_type), 50),
            percentile(waits.get(job_type), 95),
            percentile(runs[job_type], 50) or 0.0,
            percentile(runs[job_type], 95) or 0.0,
        )
        for job_type in sorted(runs)
    ]


def timings_query(since: datetime, sample: int = TIMING_SAMPLE) -> Select[Any]:
    """The most recent `sample` completions since `since`, newest first (the status/updated_at index)."""
    columns = (_t.c.type, _t.c.created_at, _t.c.run_at, _t.c.started_at, _t.c.completed_at, _t.c.attempts)
    return (
        select(*columns)
        .where(_t.c.status == JobStatus.COMPLETED.value, _t.c.updated_at >= since)
        .order_by(_t.c.updated_at.desc())
        .limit(sample)
    )


def percentile(values: list[float] | None, p: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return quantiles(values, n=100, method="inclusive")[p - 1]


#: The most jobs a workflow's graph draws (the group's list shows them all).
GRAPH_NODES = 200


@dataclass(frozen=True)
class GraphNode:
    id: UUID
    type: str
    status: str  # the row's status, or "dead" for failed for good
    created_at: datetime


@dataclass(frozen=True)
class WorkflowGraph:
    nodes: list[GraphNode]  # oldest first, at most GRAPH_NODES
    edges: list[tuple[UUID, UUID]]  # (prerequisite, dependent), both among `nodes`
    total: int  # the workflow's jobs, drawn or not


def workflow_graph(db: DB | Connection, workflow_id: UUID, *, limit: int = GRAPH_NODES) -> WorkflowGraph:
    """A group's or chain's jobs and what waits for what: two reads, by the workflow_id index and the
    dependencies' primary key."""
    _d = dependencies_table
    dead = case((FAILED_FOR_GOOD.clause(), literal_column("'dead'")), else_=_t.c.status)
    members = (
        select(_t.c.id, _t.c.type, dead.label("state"), _t.c.created_at)
        .where(_t.c.workflow_id == workflow_id)
        .order_by(_t.c.created_at, _t.c.id)
    )
    with statements(db) as conn:
        total = int(conn.execute(select(func.count()).select_from(members.subquery())).scalar_one())
        nodes = [GraphNode(r.id, r.type, r.state, r.created_at) for r in conn.execute(members.limit(limit))]
        ids = [n.id for n in nodes]
        edges = [
            (r.prerequisite_id, r.job_id)
            for r in conn.execute(
                select(_d.c.prerequisite_id, _d.c.job_id).where(_d.c.job_id.in_(ids), _d.c.prerequisite_id.in_(ids))
            )
        ]
    return WorkflowGraph(nodes, edges, total)
