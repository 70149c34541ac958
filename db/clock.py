"""The one clock the database layer reads: this machine's UTC time.

Rows carry times from the caller's clock rather than the server's, so the same SQL runs on PostgreSQL and
SQLite, and tests can pass their own `now` to travel in time.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
