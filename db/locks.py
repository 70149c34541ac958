"""Serializing the transactions that read a count and then act on it (a concurrency key's or a tenant's running
jobs, a signal key's waiting jobs), until each transaction ends, on both databases.

- PostgreSQL: a transaction-scoped advisory lock on a name (a transaction-mode pooler keeps a transaction on one
  server connection, so the lock holds across a pooler).
- SQLite: the database's one write lock, taken by a write that changes nothing. Its Python driver begins a
  transaction only before a write, so a count read first would run outside the transaction, and two claims
  could both count a free slot (seen: two of a tenant's jobs at once through `jobstack local`).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:name, :space))")
_SQLITE_WRITE_LOCK = text("UPDATE background_jobs SET status = status WHERE 1 = 0")


def take_lock(conn: Connection, name: str, *, space: int = 0) -> None:
    """Hold the lock on `name` until the caller's transaction ends. `space`: the hash's seed, a namespace of its
    own (the waits' keys use 17, as they always have: a lock taken by an older release is the same lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_ADVISORY_LOCK, {"name": name, "space": space})
    else:
        conn.execute(_SQLITE_WRITE_LOCK)
