"""What PostgreSQL's planner says about a query: its plan (for tests that forbid a sequential scan of the jobs
table) and its row estimate (for counts that would otherwise read millions of rows).

The query is sent as it runs, with its parameters bound by the driver, so the plan is the one the query
gets, not one of a hand-written copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import Executable


def plan(conn: Connection, query: Executable, *, analyze: bool = False) -> dict[str, Any]:
    """The top node of `query`'s plan (PostgreSQL only: SQLite has no comparable planner output)."""
    if conn.dialect.name != "postgresql":
        raise ValueError(f"query plans are read from PostgreSQL only, not {conn.dialect.name}")
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})  # type: ignore[attr-defined]
    options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    raw = conn.exec_driver_sql(f"EXPLAIN ({options}) {compiled}", compiled.params).scalar_one()
    document = json.loads(raw) if isinstance(raw, str) else raw
    top: dict[str, Any] = document[0]["Plan"]
    return top


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a plan, depth first."""
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


def sequential_scans(node: dict[str, Any], relation: str) -> list[dict[str, Any]]:
    """The plan's sequential scans of `relation`."""
    return [n for n in nodes(node) if n.get("Node Type") == "Seq Scan" and n.get("Relation Name") == relation]


def estimated_rows(conn: Connection, query: Executable) -> int:
    """The planner's row estimate for `query`: from the table's statistics, without reading its rows."""
    return int(plan(conn, query)["Plan Rows"])
