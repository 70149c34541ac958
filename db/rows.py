"""Writing job rows: one INSERT that honours idempotency keys, for `publish_many` and `enqueue_many` alike.

A row whose (type, idempotency key) exists is not inserted again: the caller gets the existing job, unless
its payload differs (IdempotencyConflict, and the caller's transaction rolls back: all or nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import Connection, Insert, select, tuple_

from . import tenant_quota
from .models import Job, jobs_table
from .preparation import Prepared, check_same_payload, key_of
from .tenant_quota import quota_groups
from .uniqueness import insert_or_wait

_t = jobs_table


@dataclass(frozen=True)
class Written:
    """What `write_rows` did: each request's job in input order (its new row, or the existing job its
    idempotency key names), and the ids it inserted."""

    jobs: list[Job]
    inserted: frozenset[UUID]


def write_rows(conn: Connection, prepared: Sequence[Prepared]) -> Written:
    """INSERT the prepared rows in the caller's transaction.

    executemany of INSERT .. RETURNING: SQLAlchemy's "insertmanyvalues" sends multi-row INSERTs of 1000 rows
    from one small compiled statement (a .values(list) statement with 12,000 bind parameters costs more to
    compile than the database takes to run it). A tenant's pending quota is held around the insert
    (db/tenant_quota.py): over it, TenantQuotaExceeded, and none of the rows remain.
    """
    quotas = quota_groups(prepared)
    if quotas:
        tenant_quota.lock(conn, quotas)
    insert = insert_ignoring_duplicates(conn)
    inserted = set(conn.execute(insert, [p.row for p in prepared]).scalars())
    skipped = [key_of(p) for p in prepared if p.message.job_id not in inserted and p.row["idempotency_key"]]
    existing = existing_jobs(conn, skipped) if skipped else {}
    jobs = []
    for p in prepared:
        if p.message.job_id in inserted:
            jobs.append(p.job())
        elif p.row["idempotency_key"] and key_of(p) in existing:  # raising here rolls back: all or nothing
            first = existing[key_of(p)]
            check_same_payload(first, p)
            jobs.append(first)
        else:  # its unique key names a job that has not started (db/uniqueness.py)
            job, new = insert_or_wait(conn, p, insert)
            if new:
                inserted.add(job.id)
            jobs.append(job)
    if quotas:
        tenant_quota.enforce(conn, quotas, inserted)
    return Written(jobs, frozenset(inserted))


def insert_ignoring_duplicates(conn: Connection | str) -> Insert:
    """INSERT that skips a row whose (type, idempotency_key) exists, or whose (type, unique_key) names a job
    not started yet (any unique index: no conflict target), returning the ids it did insert. `conn`: the
    connection it will run on, or its dialect's name."""
    if (conn if isinstance(conn, str) else conn.dialect.name) == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(_t).on_conflict_do_nothing().returning(_t.c.id)
    # Imported only when used: the worker's cold start never needs the SQLite dialect.
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(_t).on_conflict_do_nothing().returning(_t.c.id)


def existing_jobs(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Job]:
    query = select(_t).where(tuple_(_t.c.type, _t.c.idempotency_key).in_(list(set(keys))))
    return {(r.type, r.idempotency_key): Job.from_row(r) for r in conn.execute(query)}
