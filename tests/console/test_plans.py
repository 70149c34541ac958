"""Every query the console sends for its list, detail and overview pages can be served by an index.

PostgreSQL's planner is asked with sequential scans disabled (`enable_seqscan = off`): it then picks a
sequential scan only where no index can serve the query at all, so a plan without one proves an index path
exists, whatever the test table's size. (On a table of a few rows the planner would scan it either way; the
1,000,000-row benchmark, bench/console.py, measures the same queries at size.)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Connection
from sqlalchemy.sql import Executable

from db import DB, JobStatus, utcnow
from db.admin import Cursor, JobFilter, job_query, oldest_pending_query, page_query
from db.payload_search import payload_document
from db.plans import plan, sequential_scans
from db.readings import STATES, count_query, throughput_query, timings_query
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration

_NOW = utcnow()

FILTERS = {
    "none": JobFilter(),
    "status": JobFilter(status=JobStatus.FAILED),
    "type": JobFilter(type="test-echo"),
    "status and type": JobFilter(status=JobStatus.PENDING, type="test-echo"),
    "a pool's types": JobFilter(only_types=("count-calls", "ledger.post")),
    "the default pool": JobFilter(except_types=("count-calls",)),
    "a priority lane": JobFilter(lane="high", lanes=("high",)),
    "a pool beside lanes": JobFilter(only_types=("count-calls",), lanes=("high", "low")),
    "time range": JobFilter(created_from=_NOW - timedelta(days=1), created_to=_NOW),
    "status and time": JobFilter(status=JobStatus.COMPLETED, created_from=_NOW - timedelta(hours=1)),
    "idempotency key": JobFilter(idempotency_key="order-7"),
    "id prefix": JobFilter(id_prefix="3f2a"),
    "group": JobFilter(workflow_id=UUID(int=7)),
    "payload": JobFilter(payload=payload_document('{"customer_id": 4711}')),
    "payload and status": JobFilter(status=JobStatus.FAILED, payload=payload_document('{"customer_id": 4711}')),
}


@pytest.fixture
def conn(pg_db: DB) -> Iterator[Connection]:
    for n in range(30):
        insert_job(pg_db, type="test-echo" if n % 2 else "count-calls", idempotency_key=f"k{n}")
    with pg_db.autocommit() as connection:
        connection.exec_driver_sql("ANALYZE background_jobs")
        connection.exec_driver_sql("SET enable_seqscan = off")
        yield connection
        connection.exec_driver_sql("RESET enable_seqscan")


def _no_table_scan(conn: Connection, query: Executable) -> None:
    top = plan(conn, query)
    assert sequential_scans(top, "background_jobs") == [], top


@pytest.mark.parametrize("name", list(FILTERS))
def test_each_list_filter_first_and_later_pages_use_an_index(conn: Connection, name: str) -> None:
    _no_table_scan(conn, page_query(FILTERS[name], limit=50))
    _no_table_scan(conn, page_query(FILTERS[name], after=Cursor(_NOW, uuid4()), limit=50))


def test_the_job_detail_uses_the_primary_key(conn: Connection) -> None:
    top = plan(conn, job_query(uuid4()))
    assert top["Node Type"] == "Index Scan" and top["Index Name"] == "pk_background_jobs"


@pytest.mark.parametrize("state", STATES, ids=[s.name for s in STATES])
def test_the_overviews_counts_use_an_index(conn: Connection, state: object) -> None:
    _no_table_scan(conn, count_query(state, _NOW - timedelta(days=1)))  # type: ignore[arg-type]


def test_the_overviews_throughput_timings_and_oldest_job_use_an_index(conn: Connection) -> None:
    since = int((_NOW - timedelta(hours=1)).timestamp())
    _no_table_scan(conn, throughput_query("postgresql", since, 60))
    _no_table_scan(conn, timings_query(_NOW - timedelta(hours=1)))
    _no_table_scan(conn, oldest_pending_query(FILTERS["a pool's types"]))
    _no_table_scan(conn, oldest_pending_query(FILTERS["a priority lane"]))


def test_the_check_would_see_a_table_scan(conn: Connection) -> None:
    """The assertion can fail: a query no index serves (on the payload) still plans a sequential scan."""
    from sqlalchemy import select

    from db.models import jobs_table

    query = select(jobs_table.c.id).where(jobs_table.c.error == "boom")
    assert sequential_scans(plan(conn, query), "background_jobs") != []
