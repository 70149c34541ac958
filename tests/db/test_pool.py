"""The pool survives what a transaction-mode pooler and Lambda freezes do to connections."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

import db.engine
from db import DB, create_db, get_job

pytestmark = pytest.mark.integration


def _backend_pid(handle: DB) -> int:
    with handle.begin() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_dropped_while_idle_is_replaced_transparently(
    pg_url: str, pg_db: DB, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db.engine, "PING_AFTER_IDLE_SECONDS", 0.0)  # every checkout counts as "after a freeze"
    worker_db = create_db(pg_url)
    first_pid = _backend_pid(worker_db)
    with pg_db.begin() as conn:  # the pooler (or a NAT timeout) drops the idle server connection
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid}).scalar_one()

    assert get_job(worker_db, uuid.uuid4()) is None  # no error: the dead connection was pinged and replaced
    assert _backend_pid(worker_db) != first_pid
    worker_db.dispose()


def test_server_side_prepared_statements_are_never_used(pg_url: str) -> None:
    handle = create_db(pg_url)
    for _ in range(10):  # psycopg prepares after 5 executions by default; a pooler would then break
        get_job(handle, uuid.uuid4())
    with handle.begin() as conn:
        prepared = conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()
    assert prepared == 0
    handle.dispose()


def test_lambda_shaped_pool_holds_one_connection(pg_url: str) -> None:
    handle = create_db(pg_url)
    assert handle.engine.pool.size() == 1  # type: ignore[attr-defined]
    handle.dispose()
