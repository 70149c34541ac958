"""A tenant's turn: the jobs a tenant's running limit turns away wait in the database for a free slot, instead of
coming back through the queue again and again.

Why: returning a turned-away message makes every worker receive the busy tenant's backlog over and over, in
front of the other tenants' messages. Measured through `jobstack local` (4 invocations, a tenant limit of 2,
tenant A's 2,000 jobs published before B-E's 80): returned with a backoff, B-E's last job started when 1,810 of
A's were done; parked, every B-E job starts after one pass over A's messages (docs/reliability.md).

The rule, in one place:

- **park** (the tenant gate, db/claiming/tenant_gate.py, in the claim's transaction and under the tenant's
  lock): the job becomes `waiting` on the key `jobstack:tenant:LIMIT:TENANT`, its run_at cleared, no attempt
  spent; the worker deletes its message (outcome `waiting`).
- **release** (`release`, under the same lock): as many of the key's parked jobs as the tenant has free slots,
  oldest first, become `pending` and unsent; the caller sends their messages. The worker releases after each
  batch for the tenants whose jobs it ran; the sweeper, for every parked key, in case a worker died between a
  job's end and its release. Park and release take the tenant's lock (PostgreSQL's advisory lock, SQLite's
  write lock: db/locks.py), so a job parks only while every slot is taken, and a slot freed after it
  parked releases it.
- A FIFO pool's job is not parked (its message holds its group's order): it is returned, as before.

The key's prefix is jobstack's own: db/waits.py refuses it as a signal key, so a signal cannot release a turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import Connection, bindparam, func, select, update

from .engine import DB, statements
from .locks import take_lock
from .models import JobStatus, jobs_table

_t = jobs_table
#: Reserved: keys with this prefix are tenants' turns, never a signal's (db/waits.py: check_key).
PREFIX = "jobstack:"
_TURN = PREFIX + "tenant:"


def turn_key(limit: str, tenant: str) -> str:
    """The key a tenant's parked jobs of a limit wait on (a limit's name has no ':' of its own to confuse: its
    characters are letters, digits and _.:-, so the tenant is everything after the third ':')."""
    return f"{_TURN}{limit}:{tenant}"


@dataclass(frozen=True)
class Turn:
    """A key's limit and tenant, as the sweeper reads them back from the parked rows."""

    limit: str
    tenant: str


def turn_of(key: str) -> Turn | None:
    if not key.startswith(_TURN):
        return None
    limit, _, tenant = key[len(_TURN) :].partition(":")
    return Turn(limit, tenant) if limit and tenant else None


def lock_name(limit: str, tenant: str) -> str:
    """The advisory lock the tenant's gate and its releases take (one per limit and tenant)."""
    return f"jobstack:tenant:{limit}:{tenant}"


_PARK = (
    update(_t)
    .where(_t.c.id == bindparam("job_id", type_=_t.c.id.type), _t.c.status.in_(["pending", "failed"]))
    .values(status=JobStatus.WAITING.value, wait_key=bindparam("key"), run_at=None, updated_at=bindparam("now"))
    .returning(_t.c.id)
)


def lock(conn: Connection, limit: str, tenant: str) -> None:
    """The tenant's lock, held by its gate's count and its releases until their transactions end."""
    take_lock(conn, lock_name(limit, tenant))


def park(conn: Connection, job_id: UUID, limit: str, tenant: str, now: datetime) -> bool:
    """In the claim's transaction, the tenant's lock held: the job waits for its turn. False if it was neither
    pending nor failed (a stale claim's reclaim: returned through the queue instead)."""
    params = {"job_id": job_id, "key": turn_key(limit, tenant), "now": now}
    return conn.execute(_PARK, params).first() is not None


def release(conn: Connection, limit: str, tenant: str, free: int, now: datetime) -> list[UUID]:
    """In the caller's transaction, the tenant's lock held and its `free` slots counted: that many of its parked
    jobs, oldest first, pending and unsent. The caller sends them after its commit."""
    if free <= 0:
        return []
    oldest = (
        select(_t.c.id)
        .where(_t.c.status == JobStatus.WAITING.value, _t.c.wait_key == turn_key(limit, tenant))
        .order_by(_t.c.created_at, _t.c.id)
        .limit(free)
    )
    # No FOR UPDATE here: the tenant's lock already serializes releases and parks, and a locking subquery in an
    # UPDATE's IN may be evaluated again per row on PostgreSQL, releasing more than `free` (seen: 2 of 1).
    released = (
        update(_t)
        .where(_t.c.id.in_(oldest.scalar_subquery()), _t.c.status == JobStatus.WAITING.value)
        .values(status=JobStatus.PENDING.value, wait_key=None, sent_at=None, updated_at=now)
        .returning(_t.c.id)
    )
    return list(conn.execute(released).scalars())


def parked_turns(db: DB | Connection, *, limit: int = 500) -> list[Turn]:
    """The keys with parked jobs (the sweeper's safety net), at most `limit`."""
    query = (
        select(_t.c.wait_key)
        .where(_t.c.status == JobStatus.WAITING.value, _t.c.wait_key.startswith(_TURN, autoescape=True))
        .distinct()
        .limit(limit)
    )
    with statements(db) as conn:
        turns = [turn_of(key) for key in conn.execute(query).scalars()]
    return [t for t in turns if t is not None]


def parked_count(db: DB | Connection) -> int:
    """How many jobs wait for their tenant's turn now (`stats`, the console's overview): the partial index of
    waiting keys."""
    query = select(func.count()).where(
        _t.c.status == JobStatus.WAITING.value, _t.c.wait_key.startswith(_TURN, autoescape=True)
    )
    with statements(db) as conn:
        return int(conn.execute(query).scalar_one())
