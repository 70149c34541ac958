"""`jobstack stats --watch` against a real database: it refreshes the given number of times."""

from __future__ import annotations

import json

import pytest

from db import DB
from tests.support.cli_runner import Jobs
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration


def test_stats_watch_refreshes_count_times(jobs: Jobs, pg_db: DB) -> None:
    insert_job(pg_db)
    result = jobs("stats", "--watch", "0.01", "--count", "3", "--json")
    assert result.code == 0
    documents = [json.loads(part) for part in result.out.replace("}\n{", "}\n\x00{").split("\x00")]
    assert len(documents) == 3
    assert all({"status": "pending", "type": "test-echo", "count": 1} in d["jobs"] for d in documents)
