"""Writing workflows: groups with a callback, chains, and jobs that wait for other jobs (`after=`).

All three are one shape: rows, and `job_dependencies` rows saying who waits for whom. A dependent is written
`waiting`, counting its prerequisites; db/dependencies.py releases it when the last one finishes. Groups and
chains write every row in one transaction, so nothing can finish before its dependents exist. A job that
waits for jobs written earlier (`after=[ids]`) first marks them (`has_dependents`, an UPDATE that locks
each): one that finished is counted at once; one finishing meanwhile is waited for; one completing later
sees the mark and settles. A completion that was already blocked on the lock with the settling statement
planned its snapshot before the new rows existed: after the commit, `publish` settles those prerequisites
once more, waiting for their locks, so it is counted. For `enqueue` (the caller commits), the sweeper does
that last step (db.dependencies.unsettled_finished) within one sweep.

Cycles cannot be written: a job can only wait for jobs that exist before it (their ids), or, in a group or
chain, for the members or steps written before it in the same call.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, text

from .after_commit import is_session, send, send_after_commit
from .clock import utcnow
from .dependencies import OnFailure, settle
from .destinations import ANY_QUEUE, Destination
from .engine import DB, statements
from .exceptions import InvalidBatchItem, JobstackError
from .models import Job, JobStatus, dependencies_table, jobs_table
from .preparation import JobRequest, Prepared, check_keys_within, job_ids, prepare
from .rows import write_rows
from .states import FINISHED

_t = jobs_table
_d = dependencies_table

#: The most members one group may have (and prerequisites one job may wait for). bench/workflows.py measured
#: a group of 10,000 written in about 1 s, each member's completion the same statements as a plain job's.
MAX_GROUP_SIZE = 10_000
MAX_CHAIN_STEPS = 1_000


class UnknownPrerequisite(JobstackError):
    """`after=` names a job that does not exist."""

    def __init__(self, job_id: uuid.UUID) -> None:
        self.job_id = job_id
        super().__init__(f"after= names job {job_id}, which does not exist: wait only for jobs already published")


class WorkflowAlreadyPublished(JobstackError):
    """A group or chain names, by idempotency key, a job of a workflow published before: this call repeats
    that one. Nothing is written (a repeat would add a second set of members or steps)."""

    def __init__(self, job: Job) -> None:
        self.job_id, self.workflow_id = job.id, job.workflow_id
        super().__init__(
            f"job type {job.type!r} with idempotency key {job.idempotency_key!r} is already job {job.id} of "
            f"workflow {job.workflow_id}: this group or chain was published before (jobstack list --group "
            f"{job.workflow_id}); nothing was written"
        )


@dataclass(frozen=True)
class Workflow:
    """A group or chain as written: its id (`jobstack list --group ID`), its members or steps in order, and a
    group's callback."""

    id: uuid.UUID
    jobs: list[Job]
    then: Job | None = None


@dataclass(frozen=True)
class _Node:
    """One job to write, and what it waits for: existing job ids, or indexes of earlier nodes."""

    prepared: Prepared
    after: tuple[uuid.UUID | int, ...] = ()
    on_failure: OnFailure | None = None


@dataclass(frozen=True)
class _Written:
    jobs: list[Job]  # each node's job, in order (refreshed where settling moved it)
    outside: list[uuid.UUID]  # prerequisites written before this call, unfinished when locked


def publish_group(
    db: DB,
    members: Sequence[JobRequest],
    *,
    queue: Destination,
    then: JobRequest | None = None,
    on_failure: str = OnFailure.CANCEL,
) -> Workflow:
    """Publish `members` and, with `then`, a callback that runs once, after every member finished.

    `on_failure`: "cancel" (the default) cancels the callback as soon as a member fails for good or is
    cancelled; "continue" runs it anyway, and `ctx.dependencies()` gives it each member's outcome. Members
    are sent now; the callback is sent by the worker whose completion finished the group. Raises
    InvalidBatchItem (naming the member, or "then") before writing anything, and PublishBatchError if SQS
    refused some messages (their rows stay pending: the sweeper sends them).
    """
    now = utcnow()
    workflow_id = uuid.uuid4()
    nodes = _group_nodes(members, then, queue, on_failure, now)
    with db.begin() as conn:
        written = _write(conn, nodes, workflow_id=workflow_id, now=now)
    jobs = send(written.jobs, queue=queue, db=db)  # every pending job of the call never sent
    return _group(workflow_id, jobs, then is not None)


def enqueue_group(
    conn: Any,
    members: Sequence[JobRequest],
    *,
    queue: Destination | None = None,
    then: JobRequest | None = None,
    on_failure: str = OnFailure.CANCEL,
) -> Workflow:
    """`publish_group` in the caller's transaction (a SQLAlchemy Session or Connection): with a Session and
    `queue`, the members are sent when it commits; with a Connection, call `send(workflow.jobs, ...)` after
    your commit. Nothing is written if it raises."""
    now = utcnow()
    workflow_id = uuid.uuid4()
    nodes = _group_nodes(members, then, queue or ANY_QUEUE, on_failure, now)
    written = _write_nested(_connection_of(conn), nodes, workflow_id=workflow_id, now=now)
    _send_later(conn, written.jobs, queue)
    return _group(workflow_id, written.jobs, then is not None)


def publish_chain(db: DB, steps: Sequence[JobRequest], *, queue: Destination) -> Workflow:
    """Publish jobs that run one after another: each starts when the previous one completed, and reads its
    result with `ctx.previous_result()`. A step that fails for good (or is cancelled) cancels the rest."""
    now = utcnow()
    workflow_id = uuid.uuid4()
    nodes = _chain_nodes(steps, queue, now)
    with db.begin() as conn:
        written = _write(conn, nodes, workflow_id=workflow_id, now=now)
    return Workflow(workflow_id, send(written.jobs, queue=queue, db=db))


def enqueue_chain(conn: Any, steps: Sequence[JobRequest], *, queue: Destination | None = None) -> Workflow:
    """`publish_chain` in the caller's transaction, as `enqueue_group`."""
    now = utcnow()
    workflow_id = uuid.uuid4()
    nodes = _chain_nodes(steps, queue or ANY_QUEUE, now)
    written = _write_nested(_connection_of(conn), nodes, workflow_id=workflow_id, now=now)
    _send_later(conn, written.jobs, queue)
    return Workflow(workflow_id, written.jobs)


def publish_waiting(db: DB, requests: Sequence[JobRequest], *, queue: Destination) -> list[Job]:
    """`publish`/`publish_many` for requests with `after=`: written waiting (or pending, if what they wait
    for has finished already), sent when released."""
    now = utcnow()
    nodes = [_node(index, request, queue, now) for index, request in enumerate(requests)]
    with db.begin() as conn:
        written = _write(conn, nodes, workflow_id=None, now=now)
    jobs = send(written.jobs, queue=queue, db=db)
    if written.outside:  # prerequisites that may have finished while these rows were not yet visible
        late = settle(db, written.outside, wait=True).released
        if late:
            send(_reread(db, late), queue=queue, db=db)
            fresh = {job.id: job for job in _reread(db, [j.id for j in jobs])}
            jobs = [fresh.get(job.id, job) for job in jobs]
    return jobs


def enqueue_waiting(conn: Any, requests: Sequence[JobRequest], *, queue: Destination | None = None) -> list[Job]:
    """`publish_waiting` in the caller's transaction (a SQLAlchemy Session or Connection)."""
    now = utcnow()
    nodes = [_node(index, request, queue or ANY_QUEUE, now) for index, request in enumerate(requests)]
    written = _write(_connection_of(conn), nodes, workflow_id=None, now=now)
    _send_later(conn, written.jobs, queue)
    return written.jobs


# -- building ---------------------------------------------------------------------------------------------


def _policy(on_failure: str | None) -> OnFailure:
    try:
        return OnFailure(on_failure or OnFailure.CANCEL)
    except ValueError:
        choices = ", ".join(repr(p.value) for p in OnFailure)
        raise ValueError(f"on_failure must be one of {choices}, got {on_failure!r}") from None


def _prepare(label: Any, request: JobRequest, queue: Destination, now: datetime) -> Prepared:
    try:
        return prepare(replace(request, after=()), queue.queue_for(request.type, request.priority), now=now)
    except (JobstackError, ValueError) as err:
        raise InvalidBatchItem(label, str(err)) from None


def _node(index: int, request: JobRequest, queue: Destination, now: datetime) -> _Node:
    try:
        after = tuple(dict.fromkeys(job_ids(request.after)))  # each once, in the order given
    except ValueError as err:
        raise InvalidBatchItem(index, str(err)) from None
    if len(after) > MAX_GROUP_SIZE:
        raise InvalidBatchItem(index, f"after= lists {len(after)} jobs; a job may wait for at most {MAX_GROUP_SIZE}")
    if after and (request.run_at is not None or request.delay_seconds):
        raise InvalidBatchItem(index, "a job with after= starts when those jobs finish: run_at and delays do not apply")
    policy = _policy(request.on_failure) if after else None
    if not after and request.on_failure is not None:
        raise InvalidBatchItem(index, "on_failure applies to a job that waits for others: give after= too")
    return _Node(_prepare(index, request, queue, now), after, policy)


def _group_nodes(
    members: Sequence[JobRequest], then: JobRequest | None, queue: Destination, on_failure: str, now: datetime
) -> list[_Node]:
    policy = _policy(on_failure)
    if len(members) > MAX_GROUP_SIZE:
        raise ValueError(f"a group may have at most {MAX_GROUP_SIZE} members, got {len(members)}: split it")
    if not members and then is None:
        raise ValueError("a group needs members, or a callback (then=) to run at once")
    for index, member in enumerate(members):
        if member.after:
            raise InvalidBatchItem(index, "a group's member cannot wait for other jobs (after=): chain groups instead")
    nodes = [_Node(_prepare(index, member, queue, now)) for index, member in enumerate(members)]
    if then is not None:
        if then.after or then.run_at is not None or then.delay_seconds:
            raise InvalidBatchItem("then", "the callback starts when the group finishes: no after=, run_at or delay")
        nodes.append(_Node(_prepare("then", then, queue, now), tuple(range(len(members))), policy))
    check_keys_within([n.prepared for n in nodes])
    return nodes


def _chain_nodes(steps: Sequence[JobRequest], queue: Destination, now: datetime) -> list[_Node]:
    if not steps:
        raise ValueError("a chain needs at least one step")
    if len(steps) > MAX_CHAIN_STEPS:
        raise ValueError(f"a chain may have at most {MAX_CHAIN_STEPS} steps, got {len(steps)}")
    nodes = []
    for index, step in enumerate(steps):
        if step.after or (index and (step.run_at is not None or step.delay_seconds)):
            raise InvalidBatchItem(index, "a chain's later step starts when the previous one completes: no after=, "
                                   "run_at or delay")  # fmt: skip
        after = (index - 1,) if index else ()
        nodes.append(_Node(_prepare(index, step, queue, now), after, OnFailure.CANCEL if index else None))
    check_keys_within([n.prepared for n in nodes])
    return nodes


# -- writing ----------------------------------------------------------------------------------------------


def _write(conn: Connection, nodes: list[_Node], *, workflow_id: uuid.UUID | None, now: datetime) -> _Written:
    """The nodes' rows and dependency rows, in `conn`'s transaction; prerequisites that had finished
    already (written before, or an idempotency key's earlier job) are settled at once."""
    outside = sorted({ref for node in nodes for ref in node.after if isinstance(ref, uuid.UUID)})
    finished_outside: list[uuid.UUID] = []
    unfinished_outside: list[uuid.UUID] = []
    if outside:
        found = _mark_prerequisites(conn, outside)
        for job_id in outside:
            if job_id not in found:
                raise UnknownPrerequisite(job_id)
            (finished_outside if found[job_id] else unfinished_outside).append(job_id)
    referenced = {ref for node in nodes for ref in node.after if isinstance(ref, int)}
    prepared = []
    for index, node in enumerate(nodes):
        row = node.prepared.row | {"workflow_id": workflow_id, "has_dependents": index in referenced}
        if node.after:
            row |= {
                "status": JobStatus.WAITING.value,
                "waiting_on": len(node.after),
                "on_failure": (node.on_failure or OnFailure.CANCEL).value,
            }
        prepared.append(replace(node.prepared, row=row))
    written = write_rows(conn, prepared)
    if workflow_id is not None:
        for job in written.jobs:
            if job.id not in written.inserted and job.workflow_id is not None:
                raise WorkflowAlreadyPublished(job)  # the caller's transaction (or savepoint) rolls back
    ids = [job.id for job in written.jobs]
    edges = [
        {"prerequisite_id": ids[ref] if isinstance(ref, int) else ref, "job_id": ids[index], "position": position}
        for index, node in enumerate(nodes)
        if ids[index] in written.inserted
        for position, ref in enumerate(node.after)
    ]
    if edges:
        conn.execute(insert(_d), edges)
    earlier = sorted({ids[ref] for ref in referenced if ids[ref] not in written.inserted})  # by key, written before
    if earlier:
        _mark_prerequisites(conn, earlier)
    jobs = written.jobs
    if finished_outside or earlier:
        settle(conn, [*finished_outside, *earlier], now=now)
        fresh = {j.id: j for j in _reread(conn, ids)}
        jobs = [fresh[job_id] for job_id in ids]
    return _Written(jobs, unfinished_outside)


def _mark_prerequisites(conn: Connection, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
    """Mark jobs written before this call as having dependents, and say which have finished. The UPDATE
    locks each row (in id order): a completion of one in flight is waited for, so its status is final
    here; one that starts now waits for this transaction, then completes with `has_dependents` set and
    settles the rows this call adds (db/lifecycle.py)."""
    query = text(
        "UPDATE background_jobs SET has_dependents = true WHERE id IN (SELECT id FROM background_jobs "
        f"WHERE id IN :ids ORDER BY id{' FOR UPDATE' if conn.dialect.name == 'postgresql' else ''}) "
        f"RETURNING id, {FINISHED.sql()} AS finished"
    ).bindparams(bindparam("ids", expanding=True, type_=_t.c.id.type))
    typed = query.columns(id=_t.c.id.type)  # a UUID on SQLite too, where the column is text
    return {row.id: bool(row.finished) for row in conn.execute(typed, {"ids": job_ids})}


def _write_nested(conn: Connection, nodes: list[_Node], *, workflow_id: uuid.UUID, now: datetime) -> _Written:
    """`_write` in a savepoint of the caller's transaction: refused, it leaves nothing there either."""
    with conn.begin_nested():
        return _write(conn, nodes, workflow_id=workflow_id, now=now)


def _reread(db: DB | Connection, job_ids: Sequence[uuid.UUID]) -> list[Job]:
    with statements(db) as conn:
        return [Job.from_row(r) for r in conn.execute(select(_t).where(_t.c.id.in_(list(job_ids))))]


# -- sending ----------------------------------------------------------------------------------------------


def _connection_of(conn: Any) -> Connection:
    if is_session(conn):
        connection: Connection = conn.connection()
        return connection
    if isinstance(conn, Connection):
        return conn
    raise TypeError(
        "workflows are enqueued on a SQLAlchemy Session or Connection; with psycopg or Django, "
        "use publish_group/publish_chain after your commit"
    )


def _send_later(conn: Any, jobs: list[Job], queue: Destination | None) -> None:
    if queue is not None and is_session(conn):
        send_after_commit(conn, jobs, queue)


def _group(workflow_id: uuid.UUID, jobs: list[Job], has_then: bool) -> Workflow:
    return Workflow(workflow_id, jobs[:-1], jobs[-1]) if has_then else Workflow(workflow_id, jobs)
