"""The database URL from its secret, once per container (and again after a rotation, worker/runtime.py).

Accepts the shapes teams actually store: a bare URL, `{"url": ...}` / `{"DATABASE_URL": ...}`, or the
RDS-managed JSON (`host`, `port`, `username`, `password`, `dbname`). The secret's value never appears in
an error or a log line.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from db.engine import normalise_url
from db.exceptions import ConfigError
from worker.redaction import remember_secret
from worker.secret_sources import secret_string


def database_url_from_secret(arn: str, client: Any | None = None, *, fresh: bool = False) -> str:
    """The database URL in secret `arn`, read through worker/secret_sources.py (`fresh`: not from a cache)."""
    raw = secret_string(arn, fresh=fresh, client=client)
    remember_secret(raw.strip())
    url = parse_secret(arn, raw)
    remember_secret(_password(url))
    return url


def _password(url: str) -> str | None:
    try:
        return normalise_url(url).password
    except (ConfigError, ValueError):
        return None


def parse_secret(arn: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise ConfigError(
            f"database secret {arn} is empty: put the pooler URL in it (postgresql://user:pass@host:6543/db)"
        )
    if value.startswith(("postgres://", "postgresql://", "postgresql+psycopg://")):
        return value
    try:
        doc = json.loads(value)
    except json.JSONDecodeError:
        raise ConfigError(f"database secret {arn} is neither a postgresql:// URL nor JSON") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"database secret {arn} is JSON but not an object")
    for key in ("url", "DATABASE_URL", "database_url"):
        if isinstance(doc.get(key), str):
            return str(doc[key])
    missing = [k for k in ("host", "username", "password") if not doc.get(k)]
    if missing:
        raise ConfigError(f"database secret {arn} has no 'url' and lacks {', '.join(missing)} for an RDS-style secret")
    user, password = quote(str(doc["username"]), safe=""), quote(str(doc["password"]), safe="")
    port = doc.get("port") or 5432
    dbname = doc.get("dbname") or "postgres"
    return f"postgresql://{user}:{password}@{doc['host']}:{port}/{dbname}"
