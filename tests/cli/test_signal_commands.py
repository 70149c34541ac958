"""`jobstack signal`, `show` and `stats` on jobs that wait for a signal (db/waits.py), and `cancel` of a wait:
through the CLI against PostgreSQL and moto. A signal by hand is audited; a bad key is one line, nothing
written."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from db import DB, Job, JobStatus, Queue, audit, get_job, utcnow
from db.waits import kept_signals, park
from tests.support.cli_runner import Jobs
from tests.support.esm import drain
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration


def _waiting(db: DB, key: str) -> Job:
    job = insert_job(db, status=JobStatus.PROCESSING, attempts=1, max_attempts=3)
    parked = park(db, job.id, attempt=1, key=key, until=utcnow() + timedelta(days=2))
    assert parked is not None and parked.status is JobStatus.WAITING
    return parked


def test_show_and_stats_say_what_a_job_waits_for_and_a_signal_by_hand_releases_it(
    jobs: Jobs, pg_db: DB, queue: Queue
) -> None:
    job = _waiting(pg_db, "refund-approval:4711")
    _waiting(pg_db, "refund-approval:4712")
    _waiting(pg_db, "kyc-review:9")
    shown = jobs("show", str(job.id)).out
    assert "waits for signal 'refund-approval:4711' since " in shown and "(then it resumes timed out)" in shown
    stats = json.loads(jobs("stats", "--json").out)
    assert stats["waiting_for_signals"] == [
        {"prefix": "refund-approval", "jobs": 2},
        {"prefix": "kyc-review", "jobs": 1},
    ]

    sent = jobs("signal", "refund-approval:4711", "--payload", '{"approved": true}')
    assert sent.code == 0, sent.err
    assert sent.out.strip() == f"signal refund-approval:4711: released 1 waiting job(s): {job.id}"
    released = get_job(pg_db, job.id)
    assert released is not None and released.status is JobStatus.PENDING
    assert released.wait_result == {"key": "refund-approval:4711", "payload": {"approved": True}, "timed_out": False}
    assert [json.loads(m["Body"])["jobId"] for m in drain(queue)] == [str(job.id)]
    [entry] = audit.recent(pg_db, limit=1)
    assert (entry.action, entry.jobs, entry.selection) == ("signal", 1, "signal refund-approval:4711")

    kept = jobs("signal", "nobody-waits:1")
    assert kept.out.strip() == "signal nobody-waits:1: kept for the first wait on it"
    assert [k for k, _ in kept_signals(pg_db)] == ["nobody-waits:1"]


def test_a_bad_key_or_payload_is_one_line_and_writes_nothing(jobs: Jobs, pg_db: DB) -> None:
    for argv, says in (
        (["signal", "has space"], "a signal key is 1-120 printable characters without spaces"),
        (["signal", "k" * 121], "a signal key is 1-120 printable characters without spaces"),
        (["signal", "ok:1", "--payload", "{nope"], "--payload is not valid JSON"),
    ):
        result = jobs(*argv)
        assert result.code == 2, result
        [line] = result.err.strip().splitlines()
        assert says in line, line
    assert kept_signals(pg_db) == [] and audit.recent(pg_db, limit=5) == []


def test_cancel_of_a_waiting_job_ends_its_wait(jobs: Jobs, pg_db: DB) -> None:
    job = _waiting(pg_db, "refund-approval:1")
    assert jobs("cancel", str(job.id)).code == 0
    cancelled = get_job(pg_db, job.id)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    assert jobs("signal", "refund-approval:1").out.strip() == "signal refund-approval:1: kept for the first wait on it"
    still = get_job(pg_db, job.id)
    assert still is not None and still.status is JobStatus.CANCELLED, "a cancelled wait is not resumed"
