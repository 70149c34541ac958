"""Search by payload: the same answers on PostgreSQL (jsonb containment, its GIN index) and SQLite (its JSON
functions), and a one-line refusal of what cannot be asked."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from db import DB, JobStatus
from db.admin import JobFilter, count_matching, page_jobs
from db.payload_search import payload_document
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration

PAYLOADS: dict[str, dict[str, Any]] = {
    "ada": {"customer_id": 4711, "tags": ["vip", "eu"], "address": {"city": "Oslo", "zip": "0150"}, "urgent": True},
    "bob": {"customer_id": 4711, "tags": ["eu"], "address": {"city": "Bergen"}, "urgent": False, "note": None},
    "cy": {"customer_id": "4711", "tags": "vip", "address": {"city": "Oslo"}, "urgent": 1},
    "dee": {"customer_id": 42, "items": [1, 2.5, "three"]},
}


def _found(db: DB, search: dict[str, Any] | str, **narrower: Any) -> set[str]:
    document = payload_document(search if isinstance(search, str) else __import__("json").dumps(search))
    page = page_jobs(db, JobFilter(payload=document, **narrower), limit=100)
    return {job.payload["who"] for job in page.jobs}


@pytest.fixture
def seeded(any_db: DB) -> DB:
    for who, payload in PAYLOADS.items():
        insert_job(
            any_db, payload=payload | {"who": who}, status=JobStatus.FAILED if who == "bob" else JobStatus.PENDING
        )
    return any_db


@pytest.mark.parametrize(
    ("search", "found"),
    [
        ({"customer_id": 4711}, {"ada", "bob"}),  # the number, not the string "4711"
        ({"customer_id": "4711"}, {"cy"}),
        ({"customer_id": 4711.0}, {"ada", "bob"}),  # a JSON number is a number
        ({"address": {"city": "Oslo"}}, {"ada", "cy"}),  # nested: a part of an object
        ({"tags": ["vip"]}, {"ada"}),  # a list holding the value (not the string "vip")
        ({"tags": ["eu", "vip"]}, {"ada"}),  # every value asked for, in any order
        ({"urgent": True}, {"ada"}),  # true is not 1
        ({"urgent": 1}, {"cy"}),
        ({"note": None}, {"bob"}),  # a JSON null, not a missing key
        ({"items": [2.5, "three"]}, {"dee"}),
        ({"customer_id": 4711, "urgent": False}, {"bob"}),  # every key
        ({"missing": 1}, set()),
        ({}, {"ada", "bob", "cy", "dee"}),
    ],
)
def test_a_search_finds_the_jobs_whose_payload_contains_it(seeded: DB, search: dict[str, Any], found: set[str]) -> None:
    assert _found(seeded, search) == found


def test_a_search_narrows_with_the_other_filters_and_counts(seeded: DB) -> None:
    assert _found(seeded, {"customer_id": 4711}, status=JobStatus.FAILED) == {"bob"}
    assert count_matching(seeded, JobFilter(payload=payload_document('{"customer_id": 4711}')), limit=10) == 2


@pytest.mark.parametrize(
    ("search", "says"),
    [
        ("{customer_id: 4711}", "payload search is not JSON (Expecting property name enclosed in double quotes)"),
        ("[4711]", 'payload search must be a JSON object like {"customer_id": 4711}'),
        ('{"items": [{"sku": "X"}]}', "payload search: a list may hold values, not objects or lists"),
        ('{"a\\"b": 1}', "payload search key 'a\"b': a key may not hold a quote or a backslash"),
        ("{" + " " * 2000 + "}", "a payload search is at most 2000 characters"),
    ],
)
def test_what_cannot_be_searched_is_refused_in_one_line(search: str, says: str) -> None:
    with pytest.raises(ValueError, match="payload search") as refused:
        payload_document(search)
    assert str(refused.value).startswith(says) and "\n" not in str(refused.value)


def test_postgresql_answers_a_search_from_the_gin_index(pg_db: DB) -> None:
    for n in range(50):
        insert_job(pg_db, payload={"customer_id": n})
    query = "EXPLAIN SELECT id FROM background_jobs WHERE payload @> CAST(:doc AS jsonb)"
    with pg_db.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))  # a table this small: the planner would read it all
        plan = "\n".join(conn.execute(text(query), {"doc": '{"customer_id": 7}'}).scalars())
    assert "ix_background_jobs_payload" in plan, plan
