"""The database handle (`DB`) that every database function takes first, and the factory that builds it.

Why a handle and not a bare `Engine`: the worker and the publisher need a pool shaped for Lambda, settings
that make a transaction-mode pooler (PgBouncer, Supabase port 6543) work, and a URL that can never leak its
password through a repr or an error. `DB` carries all three and nothing else.

Database functions (db/lifecycle.py, db/relay.py, db/admin.py) accept a `DB` (each call is its own short
transaction, committed before it returns) or a SQLAlchemy `Connection` (the caller owns the transaction
and commits it). Passwords are kept out of text by db/redaction.py, and outages are told from statement
errors by db/outages.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc, make_url
from sqlalchemy.engine import URL
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, StaticPool

from .exceptions import ConfigError
from .outages import translate_errors
from .redaction import redact

#: A pooler (or a NAT gateway) silently drops connections that sit idle; Lambda freezes containers between
#: invocations for minutes. A connection idle for longer than this is pinged once before use, so a hot
#: loop of jobs pays no round trip while the first job after a freeze never meets a dead socket.
PING_AFTER_IDLE_SECONDS = 10.0

_PG_ONLY_QUERY_KEYS = ("pgbouncer",)  # Prisma-style flags that libpq rejects; the engine handles pooling.


def async_url(url: str) -> URL:
    """`normalise_url`, with the async driver of its database (for SQLAlchemy's create_async_engine, and
    db/async_outbox.py): psycopg's own async mode for PostgreSQL (no prepared statements: poolers in
    transaction mode work), aiosqlite for SQLite."""
    parsed = normalise_url(url)
    return parsed.set(
        drivername="postgresql+psycopg" if parsed.get_backend_name() == "postgresql" else "sqlite+aiosqlite"
    )


def normalise_url(url: str) -> URL:
    """Accept the URL spellings users paste (`postgres://`, `postgresql://`, `sqlite:///`) and pin the driver.

    Raises ConfigError (with the password masked) for anything else.
    """
    raw = url.strip()
    if not raw:
        raise ConfigError("database URL is empty: set DATABASE_URL, e.g. postgresql://user:pass@host:6543/postgres")
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        raw = "postgresql+psycopg://" + raw.split("://", 1)[1]
    elif scheme not in ("sqlite", "sqlite+pysqlite"):
        raise ConfigError(
            f"unsupported database URL {redact(url)!r}: use postgresql://user:pass@host:port/dbname "
            "or sqlite:///path/to/file.db"
        )
    try:
        parsed = make_url(raw)
    except (exc.ArgumentError, ValueError):
        raise ConfigError(
            f"malformed database URL {redact(url)!r}: expected scheme://user:pass@host:port/dbname"
        ) from None
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.difference_update_query(_PG_ONLY_QUERY_KEYS)
        if not parsed.host and not parsed.query.get("host"):
            raise ConfigError(f"database URL {redact(url)!r} names no host: add @host:port after the user")
    return parsed


@dataclass(frozen=True, eq=False)
class DB:
    """A pooled database handle. Safe to share across threads; `dispose()` closes its connections."""

    engine: Engine = field(repr=False)
    url: str  # always the redacted form
    #: What to check when a TLS verification fails (names the CA file in use), for the error's one line.
    tls_hint: str = ""

    @property
    def dialect(self) -> str:
        """`postgresql` or `sqlite`: the few queries that differ branch on this."""
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed when the block exits, rolled back if it raises."""
        with translate_errors(self.tls_hint), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection where each statement is its own transaction.

        For the single-statement lifecycle changes this is one round trip instead of three (psycopg
        otherwise sends BEGIN, the statement, then COMMIT), which is what a job pays twice over a pooler.
        """
        with translate_errors(self.tls_hint), self._autocommit_engine.connect() as conn:
            yield conn

    @cached_property
    def _autocommit_engine(self) -> Engine:
        """Built once: building an option engine per statement was a visible share of a job's CPU."""
        return self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"DB({self.url})"


def create_db(
    url: str,
    *,
    pool_size: int = 1,
    max_overflow: int = 0,
    connect_timeout: int = 5,
    application_name: str = "jobstack",
    pool_timeout: float = 30,
    sslmode: str | None = None,
    sslrootcert: str | None = None,
) -> DB:
    """Build the handle for `url`.

    Defaults suit one Lambda container, which runs one invocation at a time: one connection, no overflow,
    so a burst of containers can never hold more connections than the function's concurrency. Servers and
    the local runner with N threads pass a larger `pool_size`. `application_name` labels the connections in
    pg_stat_activity, so a web app's publishers can be told apart from the workers. `pool_timeout` is how
    long a checkout waits for a busy connection before ConnectionBusy; a single-threaded worker passes a
    few seconds, since for it waiting at all means waiting for itself. `sslmode` / `sslrootcert` are
    libpq's (a URL's own `?sslmode=` wins): deployed workers pass `verify-full` and the CA file, since
    libpq's default `prefer` allows a downgrade and checks no certificate.
    """
    parsed = normalise_url(url)
    tls_hint = ""
    if parsed.get_backend_name() == "sqlite":
        engine = _create_sqlite_engine(parsed)
    else:
        tls: dict[str, str] = {}
        if sslmode and "sslmode" not in parsed.query:
            tls["sslmode"] = sslmode
        if sslrootcert and "sslrootcert" not in parsed.query:
            tls["sslrootcert"] = sslrootcert
        ca = parsed.query.get("sslrootcert") or sslrootcert
        tls_hint = (
            f"the server's certificate must be signed by a CA in {ca} and name the host you connect to"
            if ca
            else "set the CA file (sslrootcert) your provider signs with"
        )
        engine = create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            pool_pre_ping=False,  # replaced by the idle-aware ping below: no round trip per checkout
            connect_args={
                # Transaction-mode poolers hand each transaction to any server connection, so a statement
                # prepared on one is missing on the next: psycopg must never prepare server-side.
                "prepare_threshold": None,
                "connect_timeout": connect_timeout,
                "application_name": application_name,
                **tls,
            },
        )
        _ping_when_idle(engine)
    return DB(engine=engine, url=parsed.render_as_string(hide_password=True), tls_hint=tls_hint)


def _create_sqlite_engine(parsed: URL) -> Engine:
    memory = parsed.database in (None, "", ":memory:")
    if memory:
        # One shared connection, or every checkout would see a different empty database.
        engine = create_engine(parsed, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")  # readers never block the one writer
        cur.execute("PRAGMA busy_timeout=30000")
        # SQLite enforces foreign keys (job_dependencies' ON DELETE CASCADE) only when asked, per connection:
        # without it pruning a workflow's jobs left their dependency rows behind.
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _remember_checkin(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_stale(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            with dbapi_conn.cursor() as cur:
                cur.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as err:
            # The pool discards this connection and retries the checkout with a fresh one.
            raise exc.DisconnectionError(redact(str(err))) from None


def dialect_of(db: DB | Connection) -> str:
    """The database's name ("postgresql", "sqlite") from a handle or from a connection in a transaction."""
    return db.dialect if isinstance(db, DB) else db.dialect.name


@contextmanager
def statements(db: DB | Connection) -> Iterator[Connection]:
    """For work whose every statement stands alone: the caller's transaction when given a Connection,
    else autocommit, so each statement commits itself in one round trip."""
    if isinstance(db, Connection):
        yield db
    else:
        with db.autocommit() as conn:
            yield conn
