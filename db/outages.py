"""Which database errors mean "cannot reach the database", and the one line each becomes.

An outage (refused connection, dropped pooler, refused credentials, failed TLS check) must become
DatabaseUnavailable, so the worker returns its records and fails the invocation instead of failing jobs;
an unmigrated database becomes SchemaNotMigrated with how to migrate; and what a statement itself caused
(a lock timeout, a handler's missing table) stays the caller's error. `db.engine.DB` wraps every
connection in `translate_errors`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from .exceptions import ConnectionBusy, DatabaseUnavailable, SchemaNotMigrated
from .redaction import redact

_AUTH_FAILED = re.compile(r"password authentication failed|SASL authentication failed|authentication failed", re.I)
_TLS_FAILED = re.compile(
    r"certificate verify failed|does not match host name|root certificate file|certificate (has )?expired"
    r"|SSL error|server does not support SSL",
    re.I,
)


@contextmanager
def translate_errors(tls_hint: str = "") -> Iterator[None]:
    """Turn "cannot reach the database" into one redacted DatabaseUnavailable line (SchemaNotMigrated for a
    database without jobstack's migrations); let other errors pass.

    Refused credentials and failed TLS checks say so (`kind`), since their fixes differ from an outage's:
    the worker re-reads a rotated secret; a TLS failure names the CA file it checked against."""
    try:
        yield
    except (exc.ProgrammingError, exc.OperationalError) as err:
        _raise_schema_not_migrated(err)
        if isinstance(err, exc.ProgrammingError):
            raise
        _raise_outage(err, tls_hint)
    except exc.InterfaceError as err:
        _raise_outage(err, tls_hint)
    except exc.TimeoutError:
        raise ConnectionBusy(
            "no free database connection: all of this process's connections are in use (a handler that uses "
            "ctx.db inside its own open transaction waits for itself: pass that transaction's connection "
            "to the db functions instead)"
        ) from None


# An unmigrated database (no table) or one migrations behind (a column missing), on PostgreSQL or SQLite.
# Only jobstack's own table: a handler's missing table stays the handler's error.
_MISSING_TABLE = re.compile(r'relation "background_jobs" does not exist|no such table: background_jobs')
_MISSING_COLUMN = re.compile(
    r'column "?(?:background_jobs\.)?(\w+)"? (?:of relation "background_jobs" )?does not exist'
    r"|table background_jobs has no column named (\w+)|no such column: (?:background_jobs\.)?(\w+)"
)


#: Both places a migration runs from: this repository's tools, and a web app with the package's `migrate` extra.
MIGRATE_HOW = (
    "run `jobstack migrate` (or `make migrate`) from the jobstack checkout, or `python -m jobstack.migrate upgrade` "
    "where the package is installed with its [migrate] extra"
)


def _raise_schema_not_migrated(err: exc.DBAPIError) -> None:
    text = str(err.orig or err)
    if _MISSING_TABLE.search(text):
        raise SchemaNotMigrated(f"the database has no background_jobs table: {MIGRATE_HOW}") from None
    column = _MISSING_COLUMN.search(text)
    if column and "background_jobs" in str(err.statement or ""):
        name = next(group for group in column.groups() if group)
        raise SchemaNotMigrated(
            f"the database's background_jobs table has no {name} column (its migrations are behind this "
            f"code): {MIGRATE_HOW}"
        ) from None


def _raise_outage(err: exc.DBAPIError, tls_hint: str) -> None:
    """DatabaseUnavailable for "cannot reach the database"; `err` itself for what a statement caused."""
    if not err.connection_invalidated and _is_query_error(err):
        raise err
    full = str(err.orig) if err.orig is not None else type(err).__name__
    lines = [line.strip() for line in full.strip().splitlines() if line.strip()]
    reason = lines[0] if lines else type(err).__name__
    if _AUTH_FAILED.search(full):
        raise DatabaseUnavailable(
            f"database refused the credentials: {redact(reason)} (a wrong or rotated password)", kind="auth"
        ) from None
    if _TLS_FAILED.search(full):
        detail = next((line for line in lines if _TLS_FAILED.search(line)), reason)
        raise DatabaseUnavailable(
            f"database TLS check failed: {redact(detail)}: {tls_hint or 'check sslmode and sslrootcert'}",
            kind="tls",
        ) from None
    raise DatabaseUnavailable(f"database unavailable: {redact(reason)}") from None


def _is_query_error(err: exc.DBAPIError) -> bool:
    """Operational errors that a statement caused (lock timeout, serialization) are not outages."""
    sqlstate = getattr(err.orig, "sqlstate", None)
    return bool(sqlstate) and not str(sqlstate).startswith("08") and str(sqlstate) not in ("57P01", "57P02", "57P03")
