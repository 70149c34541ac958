"""The jobs' database as a Django DATABASES entry, for a Django project's settings.py:

    from jobstack.django_database import database
    DATABASES = {"default": database()}

Django's connection must reach the same PostgreSQL as the jobs (jobstack.django writes each task's row on it,
in the request's transaction). Where settings.py runs decides where the URL comes from:
- a web app, a test, `jobstack local`: $DATABASE_URL;
- a deployed worker: the URL the worker read from its Secrets Manager secret (the stack never puts it in an
  environment variable), handed over before Django is set up, with the worker's TLS settings (verify-full and
  its CA file), so Django's connections are checked as the worker's are.

Kept apart from jobstack.django, which imports Django's task framework: settings.py is imported while Django
is still being set up.
"""

from __future__ import annotations

import os
from typing import Any

from .engine import normalise_url
from .exceptions import ConfigError

_handed_over: dict[str, Any] = {}


def hand_over(url: str, *, sslmode: str | None = None, sslrootcert: str | None = None) -> None:
    """The worker's database, for `database()` in a Django project's settings (worker/jobs/django_tasks.py)."""
    _handed_over.update(url=url, sslmode=sslmode, sslrootcert=sslrootcert)


def database(url: str | None = None, **extra: Any) -> dict[str, Any]:
    """A DATABASES entry for the jobs' PostgreSQL: `url`, else $DATABASE_URL, else the deployed worker's. Extra
    keys (CONN_MAX_AGE, ...) are laid over it."""
    chosen = url or os.environ.get("DATABASE_URL") or _handed_over.get("url")
    if not chosen:
        raise ConfigError(
            "no database for Django: set DATABASE_URL=postgresql://... (a deployed worker hands over its own)"
        )
    parsed = normalise_url(chosen)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(
            "Django's tasks need PostgreSQL (jobstack.django writes each task on Django's own psycopg connection): "
            "set DATABASE_URL=postgresql://..."
        )
    options = {k: v for k, v in parsed.query.items() if isinstance(v, str)}
    if not url and not os.environ.get("DATABASE_URL"):  # the worker's: its TLS settings too
        for key in ("sslmode", "sslrootcert"):
            if _handed_over.get(key) and key not in options:
                options[key] = _handed_over[key]
    entry: dict[str, Any] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parsed.database or "postgres",
        "USER": parsed.username or "",
        "PASSWORD": parsed.password or "",
        "HOST": parsed.host or "",
        "PORT": str(parsed.port or ""),
        # Django's psycopg cursors bind on the client unless OPTIONS asks for server_side_binding: nothing is
        # prepared on the server, so a transaction-mode pooler (PgBouncer, Supabase's 6543) works, as for the
        # worker's own connections (db/engine.py).
        "OPTIONS": options,
    }
    return entry | extra
