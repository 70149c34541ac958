"""Keyset pages of jobs (db.admin.page_jobs), on PostgreSQL and SQLite: every job once, newest first, for
any filter, with ties on created_at settled by id."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from db import DB, JobStatus, utcnow
from db.admin import Cursor, JobFilter, id_prefix_range, page_jobs
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration


def _all_pages(db: DB, which: JobFilter, size: int) -> list[UUID]:
    seen: list[UUID] = []
    after: Cursor | None = None
    while True:
        page = page_jobs(db, which, after=after, limit=size)
        seen += [j.id for j in page.jobs]
        if page.next is None:
            return seen
        after = Cursor.decode(page.next.encode())  # through its text, as a link carries it


def test_pages_cover_every_job_once_newest_first_with_ties(any_db: DB) -> None:
    base = utcnow()
    jobs = [insert_job(any_db, created_at=base - timedelta(seconds=n // 4)) for n in range(37)]
    seen = _all_pages(any_db, JobFilter(), 5)
    assert len(seen) == 37 and set(seen) == {j.id for j in jobs}
    order = {j.id: (j.created_at, j.id) for j in jobs}
    assert [order[i] for i in seen] == sorted(order.values(), reverse=True)


def test_a_filtered_list_pages_within_its_filter(any_db: DB) -> None:
    failed = {insert_job(any_db, status=JobStatus.FAILED, type="count-calls").id for _ in range(7)}
    for _ in range(5):
        insert_job(any_db, status=JobStatus.FAILED)
        insert_job(any_db, type="count-calls")
    which = JobFilter(status=JobStatus.FAILED, only_types=("count-calls",))
    assert set(_all_pages(any_db, which, 3)) == failed
    assert not set(_all_pages(any_db, JobFilter(except_types=("count-calls",), status=JobStatus.PENDING), 3))


def test_an_id_prefix_is_a_primary_key_range(any_db: DB) -> None:
    jobs = [insert_job(any_db) for _ in range(20)]
    target = jobs[7]
    prefix = str(target.id)[:9]  # with its dash
    found = _all_pages(any_db, JobFilter(id_prefix=prefix), 50)
    assert target.id in found and all(str(i).startswith(prefix) for i in found)
    low, high = id_prefix_range("3F2A")
    assert str(low) == "3f2a0000-0000-0000-0000-000000000000" and str(high) == "3f2affff-ffff-ffff-ffff-ffffffffffff"


@pytest.mark.parametrize("bad", ["", "xyz", "3f2a" * 9, "3f2a%"])
def test_an_id_prefix_that_is_not_hex_is_one_line(bad: str) -> None:
    with pytest.raises(ValueError, match="is not the start of a job id: give 1-32 hex digits"):
        id_prefix_range(bad)


def test_a_cursor_not_made_by_a_list_is_refused() -> None:
    with pytest.raises(ValueError, match="is not one this list gave"):
        Cursor.decode("yesterday~nope")
