"""Enqueue inside the caller's transaction: the transactional outbox, with the sweeper as its relay.

`publish()` commits by itself, so a web app could not create its user row and the "send welcome email" job
atomically. Here the job row is written on the caller's connection, in the caller's transaction, and its
message is sent only after that transaction commits; a rollback removes the row and sends nothing. If the
process dies between the commit and the send, the row is `pending` with no `sent_at`, and the sweeper sends
it after its unsent window (ResendWindows.unsent_after): late, never lost.

Three ways in, one rule:
- a SQLAlchemy `Session`: `enqueue(session, ..., queue=queue)` sends after the session commits, by itself;
- a SQLAlchemy `Connection` or a psycopg 3 connection (Django 4.2+ runs on one): `jobs = enqueue(conn, ...)`,
  then `send(jobs, queue=queue)` after your commit (with Django: `transaction.on_commit(lambda: send(...))`);
- validation, idempotency keys and the size rules are `publish()`'s, before anything is written.
Nothing here prepares statements on the server, so transaction-mode poolers (PgBouncer, Supabase's 6543) work.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any, Unpack

from sqlalchemy import Connection

from . import tenant_quota
from .after_commit import is_session, send_after_commit
from .clock import utcnow
from .destinations import ANY_QUEUE, Destination
from .models import Job, jobs_table
from .preparation import (
    JobOptions,
    JobRequest,
    Prepared,
    check_keys_within,
    check_same_payload,
    prepare_all,
    request_of,
)
from .rows import insert_ignoring_duplicates, write_rows
from .tenant_quota import quota_groups
from .workflows import enqueue_waiting

log = logging.getLogger("jobstack.outbox")
_t = jobs_table
_PENDING_KEY = "jobstack_pending_jobs"


def enqueue(
    conn: Any,
    type: str,
    payload: dict[str, Any],
    *,
    queue: Destination | None = None,
    **options: Unpack[JobOptions],
) -> Job:
    """Write one job in the caller's open transaction. See `enqueue_many`; the options (JobOptions) are
    `publish`'s, `run_at` and `delay` included."""
    return enqueue_many(conn, [request_of(type, payload, options, now=utcnow())], queue=queue)[0]


def enqueue_many(conn: Any, items: Iterable[JobRequest], *, queue: Destination | None = None) -> list[Job]:
    """Write jobs in the caller's open transaction (`conn`: a SQLAlchemy Session or Connection, or a psycopg
    connection) and return them, pending and unsent. Commits nothing.

    With a Session and `queue`, their messages are sent when the session commits and forgotten if it rolls
    back. Otherwise call `send(jobs, queue=...)` after your commit. An idempotency key seen before returns
    the first job (sent again after the commit if it was never sent). Raises InvalidBatchItem (or the item's
    own error for `enqueue`) before writing anything.
    """
    requests = list(items)
    if any(r.after or r.on_failure is not None for r in requests):
        return enqueue_waiting(conn, requests, queue=queue)
    now = utcnow()
    prepared = prepare_all(requests, queue or ANY_QUEUE, now=now, own_error_for_one=True)
    if not prepared:
        return []
    check_keys_within(prepared)
    if is_session(conn):
        jobs = write_rows(conn.connection(), prepared).jobs
        if queue is not None:
            send_after_commit(conn, jobs, queue)
        return jobs
    if isinstance(conn, Connection):
        return write_rows(conn, prepared).jobs
    return _write_psycopg(conn, prepared)


# -- writing ----------------------------------------------------------------------------------------------


@functools.cache
def _psycopg_insert() -> Any:
    """The INSERT compiled for psycopg once per process: a web request enqueueing a job should not pay for
    SQLAlchemy's compiler each time."""
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    return insert_ignoring_duplicates("postgresql").compile(dialect=PGDialect_psycopg())  # type: ignore[no-untyped-call]


def _write_psycopg(conn: Any, prepared: list[Prepared]) -> list[Job]:
    """The same INSERT, compiled by SQLAlchemy for PostgreSQL and run on the caller's psycopg connection
    with `prepare=False` (a transaction-mode pooler may hand the next statement to another server)."""

    compiled = psycopg_insert(prepared)
    inserted = set()
    quotas = quota_groups(prepared)
    with conn.cursor() as cur:
        tenant_quota.lock_psycopg(cur, quotas)
        for p in prepared:
            cur.execute(compiled.string, psycopg_params(compiled, p), prepare=False)
            row = cur.fetchone()
            if row is not None:
                inserted.add(row[0])
        tenant_quota.enforce_psycopg(cur, quotas, inserted)
        jobs = []
        for p in prepared:
            if p.message.job_id in inserted:
                jobs.append(p.job())
                continue
            cur.execute(EXISTING_SQL, (p.row["type"], p.row["idempotency_key"]), prepare=False)
            jobs.append(existing_job(cur.description, cur.fetchone(), p))
    return jobs


def psycopg_insert(prepared: list[Prepared]) -> Any:
    """The compiled INSERT for these jobs on a psycopg connection (sync or async)."""
    if any(p.row["unique_key"] for p in prepared):
        raise ValueError("unique_key needs a SQLAlchemy Session or Connection, or publish(): not a psycopg connection")
    return _psycopg_insert()


def psycopg_params(compiled: Any, p: Prepared) -> Any:
    from psycopg.types.json import Jsonb

    return compiled.construct_params({**p.row, "payload": Jsonb(p.row["payload"])})


#: The job an idempotency key already names (its INSERT did nothing).
EXISTING_SQL = "SELECT * FROM background_jobs WHERE type = %s AND idempotency_key = %s"


def existing_job(description: Any, row: Any, p: Prepared) -> Job:
    """The job EXISTING_SQL read, checked to hold the payload `p` asked for."""
    columns = [c.name for c in description or []]
    first = Job.from_row(_Row(dict(zip(columns, row or (), strict=True))))
    check_same_payload(first, p)
    return first


class _Row:
    """A psycopg row by column name, as Job.from_row reads SQLAlchemy's rows."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._mapping = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None
