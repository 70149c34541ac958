"""Throwaway PostgreSQL databases for tests and benchmarks: created, migrated, and always dropped.

A repository tool (cli/ is in no package and no asset), so tests/ and bench/ share it without bench/
importing a test module."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from db.engine import create_db
from db.exceptions import DatabaseUnavailable
from db.migrate import upgrade

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or DEFAULT_ADMIN_URL


@contextmanager
def scratch_database(admin: str | None = None, *, prefix: str = "jobstack_test") -> Iterator[str]:
    """Yield the URL of a new, migrated database on the server of `admin` (default: TEST_DATABASE_URL)."""
    server = make_url(admin or admin_url()).set(drivername="postgresql+psycopg")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as err:
        engine.dispose()
        raise DatabaseUnavailable(
            f"PostgreSQL did not answer at {server.render_as_string()} ({type(err).__name__}): start it or "
            "set TEST_DATABASE_URL to a server where you may create databases"
        ) from None
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        migrated = create_db(url)
        upgrade(migrated)
        migrated.dispose()
        yield url
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
