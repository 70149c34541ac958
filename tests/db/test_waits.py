"""db/waits.py's statements on both databases: a park is refused to an attempt that no longer holds the row;
a signal kept between a handler's look and its park is taken by the park (the job goes on at once, unsent, for
the sweeper); waiting jobs counted by key prefix; keys and timeouts checked in one line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from db import DB, Job, JobStatus, get_job, utcnow
from db.waits import check_key, check_timeout, kept_signals, park, signal, waiting_by_prefix
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration


def _running(db: DB) -> Job:
    return insert_job(db, status=JobStatus.PROCESSING, attempts=1, max_attempts=3)


def test_a_park_takes_a_signal_kept_meanwhile_and_goes_on_unsent(any_db: DB) -> None:
    job = _running(any_db)
    with any_db.begin() as conn:
        assert signal(conn, "approval:1", {"ok": True}).kept
    parked = park(any_db, job.id, attempt=1, key="approval:1", until=utcnow() + timedelta(hours=1))
    assert parked is not None and parked.status is JobStatus.PENDING and parked.sent_at is None
    assert parked.wait_result == {"key": "approval:1", "payload": {"ok": True}, "timed_out": False}
    assert kept_signals(any_db) == []


def test_a_park_by_an_attempt_that_lost_the_row_changes_nothing(any_db: DB) -> None:
    job = _running(any_db)
    assert park(any_db, job.id, attempt=2, key="approval:2", until=utcnow() + timedelta(hours=1)) is None
    row = get_job(any_db, job.id)
    assert row is not None and row.status is JobStatus.PROCESSING


def test_waiting_jobs_are_counted_by_key_prefix(any_db: DB) -> None:
    for key in ("refund:1", "refund:2", "kyc:1", "plain"):
        job = _running(any_db)
        park(any_db, job.id, attempt=1, key=key, until=utcnow() + timedelta(hours=1))
    assert waiting_by_prefix(any_db) == [("refund", 2), ("kyc", 1), ("plain", 1)]


@pytest.mark.parametrize("key", ["", "with space", "k" * 121, None])
def test_a_bad_key_is_one_line(key: object) -> None:
    with pytest.raises(ValueError, match=r"^a signal key is 1-120 printable characters without spaces"):
        check_key(key)


@pytest.mark.parametrize("timeout", [timedelta(0), timedelta(days=367)])
def test_a_timeout_out_of_range_is_one_line(timeout: timedelta) -> None:
    with pytest.raises(ValueError, match=r"^a wait's timeout is 1 second to 366 days, got "):
        check_timeout(timeout)
