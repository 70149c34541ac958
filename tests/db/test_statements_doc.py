"""docs/statements.md holds every statement the worker, the sweeper and a publisher send, as psycopg sends it
to PostgreSQL, one section an operation, so a reviewer reads the SQL that runs (the statements are composed
in db/claiming/, db/lifecycle.py, db/relay.py and db/states.py; no variant exists in one piece anywhere else) and a pull
request that changes one shows the change in that file. The page is written from this run with
`make statements`; otherwise this test fails if the code sends anything the page does not show."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from db import DB
from tests.support.operations import OPERATIONS, captured, seed

pytestmark = pytest.mark.integration
PAGE = Path(__file__).resolve().parents[2] / "docs" / "statements.md"
HEADER = """# The statements jobstack sends

Every statement of each operation the worker, the sweeper and a publisher run on `background_jobs`, as
psycopg sends it to PostgreSQL (parameters as `%(name)s`), in the order sent. Written by `make statements`
from tests/db/test_statements_doc.py, which fails when the code sends anything this page does not show;
tests/db/test_query_plans.py plans the same statements and fails on a sequential scan.
"""


def _tidy(statement: str) -> str:
    """The statement without trailing spaces or blank lines (what SQLAlchemy's text() kept of the source)."""
    lines = [line.rstrip() for line in statement.strip().splitlines()]
    return "\n".join(line for line in lines if line)


def render(db: DB) -> str:
    sections = [HEADER]
    for name, operation in OPERATIONS.items():
        jobs = seed(db)
        with db.engine.connect() as conn, conn.begin() as transaction:
            with captured(conn) as sent:
                operation(conn, jobs)
            transaction.rollback()
        sections.append(f"\n## {name}\n")
        for statement, _ in sent:
            sections.append(f"\n```sql\n{_tidy(statement)}\n```\n")
    text = "".join(sections)
    return re.sub(r"\n{3,}", "\n\n", text)


def test_the_statements_page_is_what_the_code_sends(pg_db: DB) -> None:
    rendered = render(pg_db)
    if os.environ.get("JOBSTACK_STATEMENTS_DOC") == "1":
        PAGE.write_text(rendered)
    assert PAGE.read_text() == rendered, (
        "the code sends other statements than docs/statements.md shows: make statements"
    )
    assert rendered.count("```sql") >= len(OPERATIONS)
