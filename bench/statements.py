"""Counts the SQL statements and commits a block of code sends, via SQLAlchemy's engine events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from db import DB


@contextmanager
def count_statements(db: DB) -> Iterator[Counter[str]]:
    """Counter of statement verbs (INSERT, UPDATE, SELECT, ...) plus the transactions' COMMITs.

    A statement run on an autocommit connection commits itself on the server in the same round trip;
    those are counted as "autocommit" instead of COMMIT, since no COMMIT is sent.
    """
    counts: Counter[str] = Counter()

    def on_execute(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counts[statement.lstrip().split(None, 1)[0].upper()] += 1
        if _autocommit(conn):
            counts["(autocommit)"] += 1

    def on_commit(conn: Any) -> None:
        if not _autocommit(conn):
            counts["COMMIT"] += 1

    def on_rollback(conn: Any) -> None:
        if not _autocommit(conn):  # psycopg sends nothing for a rollback outside a transaction
            counts["ROLLBACK"] += 1

    event.listen(db.engine, "before_cursor_execute", on_execute)
    event.listen(db.engine, "commit", on_commit)
    event.listen(db.engine, "rollback", on_rollback)
    try:
        yield counts
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)
        event.remove(db.engine, "commit", on_commit)
        event.remove(db.engine, "rollback", on_rollback)


def _autocommit(conn: Any) -> bool:
    return bool(conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT")


def per(counts: Counter[str], n: int) -> str:
    return ", ".join(f"{verb} {count / n:g}" for verb, count in sorted(counts.items()))
