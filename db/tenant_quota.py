"""The pending quota per tenant: at most a type's `max_pending_per_tenant` jobs of one tenant waiting to start
(pending, scheduled or waiting), checked where rows are written, so every entry point holds it (publish,
publish_many, enqueue on a Session, a Connection or a psycopg connection, workflows, the CLI, the console,
Django tasks).

Why at publish and not at the claim: a backlog is what the quota bounds; a job refused at the claim would sit
in the table and the queue all the same. The rule in the write's transaction:

1. PostgreSQL: a transaction-scoped advisory lock per (type, tenant), so two publishers of one tenant count
   one after the other (on SQLite the insert below takes the database's one write lock, before the count);
2. the rows are inserted as usual (an idempotency key seen before inserts nothing, and counts nothing new);
3. the tenant's backlog is counted, at most `limit + 1` rows read (a bounded count: a tenant at its quota of
   10,000 costs the same whatever its history);
4. over the limit: this call's new rows of the group are deleted again, in the same transaction, and
   TenantQuotaExceeded says so in one line. Nothing of the call remains, whoever commits the transaction.

Counting after the insert, not before, is what makes an idempotent retry of a job already written pass at
the quota. In autocommit (a psycopg connection outside a transaction) the lock lasts one statement; every
insert is then counted after it committed, so the last row to survive saw every surviving row: the quota
still holds, erring toward refusing both of two racing publishers.

The rule is written once, as the steps of a generator (`_enforcing`), and each driver runs them: SQLAlchemy
(`enforce`), psycopg (`enforce_psycopg`) and psycopg's async connection (`enforce_psycopg_async`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, bindparam, text

from .exceptions import TenantQuotaExceeded
from .job_types import registered_job_types
from .models import JobStatus, jobs_table
from .preparation import Prepared

_BACKLOG = ", ".join(f"'{s.value}'" for s in (JobStatus.PENDING, JobStatus.SCHEDULED, JobStatus.WAITING))

#: Each step's SQL, in psycopg's form (`%(name)s`); SQLAlchemy's `:name` form is derived from it.
_SQL = {
    "lock": "SELECT pg_advisory_xact_lock(hashtextextended(%(lock)s, 0))",
    "count": (
        "SELECT count(*) FROM (SELECT 1 FROM background_jobs WHERE type = %(type)s AND tenant = %(tenant)s "
        f"AND status IN ({_BACKLOG}) LIMIT %(cap)s) AS backlog"
    ),
    "delete": "DELETE FROM background_jobs WHERE id = %(id)s",
}
_ALCHEMY = {
    name: text(sql.replace("%(", ":").replace(")s", "")).bindparams(
        *([bindparam("id", type_=jobs_table.c.id.type)] if name == "delete" else [])
    )
    for name, sql in _SQL.items()
}

#: A step for a driver to run: the statement's name, its parameters.
Step = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class QuotaGroup:
    """One (type, tenant) this write adds rows to, and the type's quota."""

    job_type: str
    tenant: str
    limit: int
    ids: tuple[UUID, ...]  # the rows this write asks for (those it inserts are a subset)


def quota_groups(prepared: Sequence[Prepared]) -> list[QuotaGroup]:
    """The groups a write must check: rows with a tenant whose type has a quota (none: the write is as before)."""
    types = registered_job_types()
    found: dict[tuple[str, str], list[UUID]] = {}
    for p in prepared:
        tenant, job_type = p.row.get("tenant"), types.get(p.row["type"])
        if tenant is not None and job_type is not None and job_type.max_pending_per_tenant is not None:
            found.setdefault((job_type.name, tenant), []).append(p.message.job_id)
    return [
        QuotaGroup(t, tenant, types[t].max_pending_per_tenant or 0, tuple(ids))
        for (t, tenant), ids in sorted(found.items())  # one order of the locks for every writer: no deadlock
    ]


def locking(groups: Sequence[QuotaGroup], dialect: str) -> list[Step]:
    """The locks to take before the insert (PostgreSQL; on SQLite the insert itself takes the write lock)."""
    if dialect != "postgresql":
        return []
    return [("lock", {"lock": f"jobstack:quota:{g.job_type}:{g.tenant}"}) for g in groups]


def _enforcing(groups: Sequence[QuotaGroup], inserted: set[UUID]) -> Generator[Step, int | None, None]:
    """After the insert: count each group's backlog (the driver sends the count back); over a quota, delete
    every row this write inserted (its other types' too: the call is refused whole) and raise."""
    for group in groups:
        new = sum(1 for i in group.ids if i in inserted)
        if not new:
            continue
        backlog = (yield ("count", {"type": group.job_type, "tenant": group.tenant, "cap": group.limit + 1})) or 0
        if backlog > group.limit:
            for job_id in sorted(inserted):
                yield ("delete", {"id": job_id})
            raise TenantQuotaExceeded(group.job_type, group.tenant, group.limit, backlog - new, new)


def _drive(steps: Generator[Step, int | None, None], run: Callable[[str, dict[str, Any]], int | None]) -> None:
    """Run the steps with a sync driver's `run` (a count's answer, None for the rest)."""
    answer: int | None = None
    while True:
        try:
            name, params = steps.send(answer)
        except StopIteration:
            return
        answer = run(name, params)


def lock(conn: Connection, groups: Sequence[QuotaGroup]) -> None:
    for name, params in locking(groups, conn.dialect.name):
        conn.execute(_ALCHEMY[name], params)


def enforce(conn: Connection, groups: Sequence[QuotaGroup], inserted: set[UUID]) -> None:
    """The quota after the insert, on a SQLAlchemy connection (raises TenantQuotaExceeded, its rows gone)."""

    def run(name: str, params: dict[str, Any]) -> int | None:
        result = conn.execute(_ALCHEMY[name], params)
        return result.scalar() if name == "count" else None

    _drive(_enforcing(groups, inserted), run)


def lock_psycopg(cur: Any, groups: Sequence[QuotaGroup]) -> None:
    for name, params in locking(groups, "postgresql"):
        cur.execute(_SQL[name], params, prepare=False)


def enforce_psycopg(cur: Any, groups: Sequence[QuotaGroup], inserted: set[UUID]) -> None:
    """`enforce` on a psycopg cursor (`prepare=False`: a transaction-mode pooler)."""

    def run(name: str, params: dict[str, Any]) -> int | None:
        cur.execute(_SQL[name], params, prepare=False)
        return cur.fetchone()[0] if name == "count" else None

    _drive(_enforcing(groups, inserted), run)


async def lock_psycopg_async(cur: Any, groups: Sequence[QuotaGroup]) -> None:
    for name, params in locking(groups, "postgresql"):
        await cur.execute(_SQL[name], params, prepare=False)


async def enforce_psycopg_async(cur: Any, groups: Sequence[QuotaGroup], inserted: set[UUID]) -> None:
    """`enforce` on psycopg's async cursor: the same steps, awaited."""
    steps = _enforcing(groups, inserted)
    answer: int | None = None
    while True:
        try:
            name, params = steps.send(answer)
        except StopIteration:
            return
        await cur.execute(_SQL[name], params, prepare=False)
        answer = (await cur.fetchone())[0] if name == "count" else None
