"""No statement the worker, the sweeper or a publisher sends reads the jobs table by a sequential scan.

Each operation runs for real in one transaction (then rolled back), every statement it sends is captured as
sent (SQL and parameters, from SQLAlchemy's before_cursor_execute), and PostgreSQL plans each again with
sequential scans disabled: it then plans one only where no index can serve the statement, so a plan without
one proves an index path whatever the test table's size. bench/table_scale.py measures the same operations
on 10,000,000 rows.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Connection

from db import DB
from db.plans import sequential_scans
from tests.support.operations import OPERATIONS, captured, seed

pytestmark = pytest.mark.integration


def _scans(conn: Connection, statement: str, parameters: Any) -> list[dict[str, Any]]:
    raw = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar_one()
    document = json.loads(raw) if isinstance(raw, str) else raw
    return sequential_scans(document[0]["Plan"], "background_jobs")


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_no_statement_scans_the_jobs_table(pg_db: DB, name: str) -> None:
    jobs = seed(pg_db)
    with pg_db.engine.connect() as conn, conn.begin() as transaction:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        with captured(conn) as sent:
            OPERATIONS[name](conn, jobs)
        assert sent, "the operation sent no statement"
        for statement, parameters in sent:
            assert _scans(conn, statement, parameters) == [], statement
        transaction.rollback()


def test_the_check_sees_a_scan_when_no_index_serves(pg_db: DB) -> None:
    """The assertion can fail: planned the same way, a filter on the error text (no index) scans the table."""
    with pg_db.engine.connect() as conn, conn.begin() as transaction:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        assert _scans(conn, "SELECT id FROM background_jobs WHERE error = %(e)s", {"e": "boom"}) != []
        transaction.rollback()
