"""Schema migrations (Alembic), runnable from code, `make migrate`, `python -m db.migrate` here and
`python -m jobstack.migrate` where the package is installed (with its `migrate` extra: Alembic).

Alembic is configured in code rather than an alembic.ini so the same function serves the CLI, the tests
and the local runner, and the script location travels with the package wherever it is installed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from .engine import DB, create_db
from .exceptions import JobstackError
from .outages import translate_errors

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def _config() -> Config:
    from alembic.config import Config

    from . import models

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["models"] = models  # for env.py and the revisions, whatever this package is named
    return config


@contextmanager
def _connection(db: DB) -> Iterator[Connection]:
    """A connection with no transaction of ours: alembic's own (env.py) holds every revision, and a revision
    may step out of it (`autocommit_block`: 0013 builds its index CONCURRENTLY, which no transaction may
    hold). Errors are translated to one line as `DB.begin`'s are."""
    with translate_errors(db.tls_hint), db.engine.connect() as conn:
        yield conn
        conn.commit()


def upgrade(db: DB, revision: str = "head") -> None:
    from alembic import command

    config = _config()
    with _connection(db) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def downgrade(db: DB, revision: str) -> None:
    from alembic import command

    config = _config()
    with _connection(db) as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def head() -> str:
    """The newest revision in db/migrations: what `upgrade` brings a database to."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(db: DB) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.begin() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def main(argv: list[str] | None = None) -> int:
    package = __name__.rsplit(".", 1)[0]  # `db` in this repository, `jobstack` where the package is installed
    parser = argparse.ArgumentParser(prog=f"python -m {package}.migrate", description=__doc__)
    parser.add_argument("action", choices=["upgrade", "downgrade", "current"])
    parser.add_argument("revision", nargs="?", default=None, help="target revision (default: head / -1)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL")
    args = parser.parse_args(argv)
    if not args.database_url:
        print("error: no database: set DATABASE_URL or pass --database-url", file=sys.stderr)
        return 2
    try:
        import alembic  # noqa: F401 - the `migrate` extra's one dependency
    except ModuleNotFoundError:
        print(
            f'error: migrations need Alembic: pip install "/path/to/your/jobstack-checkout[migrate]" (the package '
            f"with its migrate extra), then python -m {package}.migrate upgrade",
            file=sys.stderr,
        )
        return 2
    try:
        db = create_db(args.database_url)
    except JobstackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        if args.action == "upgrade":
            upgrade(db, args.revision or "head")
        elif args.action == "downgrade":
            downgrade(db, args.revision or "-1")
        print(f"{db.url}: at revision {current(db) or 'none (empty)'}")
    except JobstackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
