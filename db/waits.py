"""Jobs that wait for the world: a signal by key, with a timeout, and the statements that park and release them.

A handler's `ctx.wait_for_signal(key, timeout=...)` ends its invocation: the job is parked `waiting` on the key,
its attempt given back, its message deleted; no message is in flight and no function runs while it waits (its
`run_at` is the wait's timeout). `signal(conn, key, payload)` runs in the sender's own transaction: every job
waiting on the key becomes `pending` with the signal recorded on its row (`wait_result`), so it resumes only if
that transaction commits; its message is sent after the commit (the outbox's rule: a Session's commit sends it,
a Connection's caller calls `send`, and if the process dies first the sweeper sends it). The resumed handler's
wait step reads the signal from the row and journals it, so a retry gets the same signal and a second signal
to the key finds nobody waiting.

The rules, stated once:
- One key wakes every job waiting on it when the signal commits (usually one: keys name one thing, e.g.
  "refund-approval:4711").
- A signal to a key nobody waits for is kept, at most one per key (the first; later ones are no-ops), for
  SIGNAL_RETENTION, and the first job to wait on that key takes it and goes on at once.
- A wait that reaches its timeout resumes with a timeout result (`Signal.timed_out`), by the sweeper.
- Parking and signalling a key are serialized (db/locks.py: an advisory lock on PostgreSQL, the write lock on
  SQLite), so a signal committed while a job parks is never missed: either the signal sees the job waiting, or
  the park sees the kept signal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, delete, func, insert, select, update

from .clock import utcnow
from .engine import DB, statements
from .locks import take_lock
from .models import Job, JobStatus, jobs_table, signals_table

_t, _s = jobs_table, signals_table
#: A key is what a sender and a waiter agree on: printable, no spaces, at most 120 characters (the wait's step
#: is named after it: `wait:KEY`, within a step name's 128).
SIGNAL_KEY = re.compile(r"[\x21-\x7e]{1,120}")
#: Keys jobstack's own waits use (db/tenant_turns.py's PREFIX, named here too: a signal may not release them).
RESERVED_PREFIX = "jobstack:"
#: A signal sent before any job waits for its key is kept this long for the first wait on it.
SIGNAL_RETENTION = timedelta(days=7)
#: The longest wait: a year, the scheduled jobs' horizon.
MAX_WAIT = timedelta(days=366)


@dataclass(frozen=True)
class Signal:
    """What ended a wait: the signal's payload, or its timeout (`timed_out`, payload None)."""

    key: str
    payload: Any = None
    timed_out: bool = False

    def as_result(self) -> dict[str, Any]:
        return {"key": self.key, "payload": self.payload, "timed_out": self.timed_out}

    @classmethod
    def from_result(cls, value: Any) -> Signal:
        return cls(str(value["key"]), value.get("payload"), bool(value.get("timed_out")))


def check_key(key: object) -> str:
    """The key, or ValueError in one line saying what a key may be."""
    if not isinstance(key, str) or not SIGNAL_KEY.fullmatch(key):
        raise ValueError(
            f"a signal key is 1-120 printable characters without spaces (e.g. 'refund-approval:4711'), got {key!r}"
        )
    if key.startswith(RESERVED_PREFIX):
        raise ValueError(
            f"a signal key may not start with {RESERVED_PREFIX!r}: jobstack's own waits use it (a tenant's turn), "
            f"got {key!r}"
        )
    return key


def check_timeout(timeout: timedelta) -> timedelta:
    if not timedelta(seconds=1) <= timeout <= MAX_WAIT:
        raise ValueError(f"a wait's timeout is 1 second to {MAX_WAIT.days} days, got {timeout}")
    return timeout


@dataclass(frozen=True)
class Sent:
    """What `signal` did: the jobs it released (their messages are sent after the commit), or whether it was
    kept for a later wait (False: a signal was already kept for the key, the first stands)."""

    key: str
    released: tuple[Job, ...]
    kept: bool


def signal(conn: Any, key: str, payload: Any = None, *, now: datetime | None = None) -> Sent:
    """Signal `key` in the caller's open transaction (a SQLAlchemy Connection, or a Session's connection). Commits
    nothing: the caller's commit releases the waiting jobs, and the caller sends them after it (`send`), or a
    Session does with `signal_in_session`."""
    check_key(key)
    now = now or utcnow()
    _lock(conn, key)
    released_result = Signal(key, payload).as_result()
    stmt = (
        update(_t)
        .where(_t.c.status == JobStatus.WAITING.value, _t.c.wait_key == key)
        .values(status=JobStatus.PENDING.value, wait_result=released_result, run_at=None, sent_at=None, updated_at=now)
        .returning(*_t.c)
    )
    released = tuple(Job.from_row(r) for r in conn.execute(stmt))
    if released:
        return Sent(key, released, kept=False)
    conn.execute(delete(_s).where(_s.c.key == key, _s.c.expires_at <= now))  # an expired one is not kept
    if conn.execute(select(_s.c.key).where(_s.c.key == key)).first() is not None:
        return Sent(key, (), kept=False)
    conn.execute(_keep(key, payload, now))
    return Sent(key, (), kept=True)


def park(
    db: DB | Connection, job_id: UUID, *, attempt: int, key: str | None, until: datetime, now: datetime | None = None
) -> Job | None:
    """End a claimed attempt in a wait for `key` until `until`: `waiting`, the attempt given back. If a signal
    was kept for the key (sent between the handler's look and this park), `pending` at once with it recorded
    and unsent, so the sweeper sends it. With no key (a durable sleep): `scheduled` at `until`, released by the
    sweeper. None if the attempt no longer holds the row (another invocation took it over)."""
    now = now or utcnow()
    held = and_held(job_id, attempt)
    given_back = {"attempts": _t.c.attempts - 1, "started_at": None, "updated_at": now, "sent_at": None}
    if key is None:
        sleeping = given_back | {"status": JobStatus.SCHEDULED.value, "run_at": until, "wait_key": None}
        with statements(db) as conn:
            row = conn.execute(update(_t).where(*held).values(**sleeping).returning(*_t.c)).first()
        return Job.from_row(row) if row is not None else None
    with _transaction(db) as conn:
        _lock(conn, key)
        kept = conn.execute(delete(_s).where(_s.c.key == key, _s.c.expires_at > now).returning(_s.c.payload)).first()
        values: dict[str, Any] = given_back | {"wait_key": key}
        if kept is not None:
            values |= {"status": JobStatus.PENDING.value, "wait_result": Signal(key, kept.payload).as_result(),
                       "run_at": None}  # fmt: skip
        else:
            values |= {"status": JobStatus.WAITING.value, "wait_result": None, "run_at": until}
        row = conn.execute(update(_t).where(*held).values(**values).returning(*_t.c)).first()
        if row is None and kept is not None:  # not ours to take: the signal stays kept
            conn.execute(_keep(key, kept.payload, now))
    return Job.from_row(row) if row is not None else None


def take_kept(conn: Connection, key: str, *, now: datetime | None = None) -> Signal | None:
    """In the caller's transaction: the signal kept for `key`, taken (deleted) for the wait that asks; None if
    none is kept. The caller journals it in the same transaction, so a signal is never taken and lost."""
    _lock(conn, key)
    row = conn.execute(
        delete(_s).where(_s.c.key == key, _s.c.expires_at > (now or utcnow())).returning(_s.c.payload)
    ).first()
    return Signal(key, row.payload) if row is not None else None


def and_held(job_id: UUID, attempt: int) -> tuple[Any, ...]:
    return (_t.c.id == job_id, _t.c.status == JobStatus.PROCESSING.value, _t.c.attempts == attempt)


def time_out(db: DB, *, limit: int = 500, now: datetime | None = None) -> list[Job]:
    """The sweeper's part: waits past their timeout resume with a timeout result (each in its own conditional
    statement, so a signal committing at the same moment wins or loses the row cleanly), and kept signals past
    their retention are dropped. The released jobs' messages are the caller's to send."""
    now = now or utcnow()
    due = (_t.c.status == JobStatus.WAITING.value, _t.c.wait_key.is_not(None), _t.c.run_at <= now)
    released = []
    with statements(db) as conn:
        rows = conn.execute(select(_t.c.id, _t.c.wait_key).where(*due).order_by(_t.c.run_at).limit(limit)).all()
    for job_id, key in rows:
        with db.begin() as conn:
            _lock(conn, key)
            row = conn.execute(
                update(_t)
                .where(_t.c.id == job_id, *due)
                .values(
                    status=JobStatus.PENDING.value,
                    wait_result=Signal(key, timed_out=True).as_result(),
                    run_at=None,
                    sent_at=None,
                    updated_at=now,
                )
                .returning(*_t.c)
            ).first()
            if row is not None:
                released.append(Job.from_row(row))
    with db.begin() as conn:
        conn.execute(delete(_s).where(_s.c.expires_at <= now))
    return released


def waiting_by_prefix(db: DB | Connection, *, separator: str = ":", limit: int = 50) -> list[tuple[str, int]]:
    """How many jobs wait on each key prefix (the key up to its first `separator`): what `stats` shows. Read by
    the partial index of waiting keys. Jobs parked for their tenant's turn are not signals' and are not counted
    here (db/tenant_turns.py: parked_count)."""
    with statements(db) as conn:
        position = func.strpos if conn.dialect.name == "postgresql" else func.instr
        cut = func.coalesce(func.nullif(position(_t.c.wait_key, separator), 0), 256) - 1
        keys = (
            select(func.substr(_t.c.wait_key, 1, cut).label("prefix"))
            .where(
                _t.c.status == JobStatus.WAITING.value,
                _t.c.wait_key.is_not(None),
                ~_t.c.wait_key.startswith(RESERVED_PREFIX, autoescape=True),  # tenants' turns: parked_count
            )
            .subquery()
        )
        query = (
            select(keys.c.prefix, func.count().label("jobs"))
            .group_by(keys.c.prefix)
            .order_by(func.count().desc(), keys.c.prefix)
            .limit(limit)
        )
        return [(str(p), int(n)) for p, n in conn.execute(query)]


def waiting_on(db: DB | Connection, key: str) -> int:
    """How many jobs wait on `key` now (the partial index of waiting keys)."""
    query = select(func.count()).where(_t.c.status == JobStatus.WAITING.value, _t.c.wait_key == key)
    with statements(db) as conn:
        return int(conn.execute(query).scalar_one())


def kept_signals(db: DB | Connection, keys: Sequence[str] | None = None) -> list[tuple[str, datetime]]:
    """Signals kept for a wait (no job waited yet), oldest first: their keys and when they expire."""
    query = select(_s.c.key, _s.c.expires_at).order_by(_s.c.created_at)
    if keys is not None:
        query = query.where(_s.c.key.in_(list(keys)))
    with statements(db) as conn:
        return [(k, e) for k, e in conn.execute(query)]


def _keep(key: str, payload: Any, now: datetime) -> Any:
    return insert(_s).values(key=key, payload=payload, created_at=now, expires_at=now + SIGNAL_RETENTION)


@contextmanager
def _transaction(db: DB | Connection) -> Iterator[Connection]:
    """The caller's transaction when given a Connection, else one of our own: a park's statements commit
    together."""
    if isinstance(db, Connection):
        yield db
    else:
        with db.begin() as conn:
            yield conn


def _lock(conn: Connection, key: str) -> None:
    """Serialize the statements of one key (park, signal, time out) until the transaction ends (db/locks.py)."""
    take_lock(conn, f"jobstack-wait:{key}", space=17)
