"""The console and jobs that wait for a signal: the job page says what it waits for and until when, the
overview counts waiting jobs by key prefix, and an operator sends the signal (a confirmation first, then a
POST with the CSRF token; audited), or is refused in one line for a payload that is not JSON."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from cli.console.guard import CSRF_FIELD, Guard
from db import DB, Job, JobStatus, Queue, audit, get_job, utcnow
from db.waits import park
from tests.support.esm import drain
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration


def _waiting(db: DB, key: str) -> Job:
    job = insert_job(db, status=JobStatus.PROCESSING, attempts=1, max_attempts=3)
    parked = park(db, job.id, attempt=1, key=key, until=utcnow() + timedelta(days=2))
    assert parked is not None
    return parked


def test_the_job_page_and_the_overview_show_waits_and_a_signal_is_sent_after_a_confirmation(
    logged_in: tuple[FlaskClient, Guard], pg_db: DB, queue: Queue
) -> None:
    client, guard = logged_in
    job = _waiting(pg_db, "refund-approval:4711")
    _waiting(pg_db, "refund-approval:4712")
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert 'id="job-wait"' in page and "refund-approval:4711" in page and "then it resumes timed out" in page
    assert f'href="/confirm/signal?key=refund-approval%3A4711&amp;job={job.id}"' in page
    overview = client.get("/").get_data(as_text=True)
    row = '<tr data-signal-prefix="refund-approval"><td class="mono">refund-approval</td><td class="num">2</td>'
    assert row in overview

    confirm = client.get(f"/confirm/signal?key=refund-approval:4711&job={job.id}").get_data(as_text=True)
    assert "Signal refund-approval:4711: 1 waiting job(s) resume with the payload below" in confirm
    assert 'id="signal-payload"' in confirm
    form = {"key": "refund-approval:4711", "job": str(job.id), CSRF_FIELD: guard.csrf}
    refused = client.post("/act/signal", data=form | {"payload": "{nope"})
    assert refused.status_code == 400 and "the payload is not JSON" in refused.get_data(as_text=True)
    assert get_job(pg_db, job.id).status is JobStatus.WAITING  # type: ignore[union-attr]
    assert client.post("/act/signal", data={k: v for k, v in form.items() if k != CSRF_FIELD}).status_code == 403

    done = client.post("/act/signal", data=form | {"payload": '{"approved": true}'})
    assert done.status_code == 200
    assert f"signal refund-approval:4711: released 1 waiting job(s): {job.id}" in done.get_data(as_text=True)
    released = get_job(pg_db, job.id)
    assert released is not None and released.status is JobStatus.PENDING
    assert released.wait_result["payload"] == {"approved": True}
    assert [json.loads(m["Body"])["jobId"] for m in drain(queue)] == [str(job.id)]
    [entry] = audit.recent(pg_db, limit=1)
    assert (entry.via, entry.action, entry.jobs) == ("console", "signal", 1)


def test_a_bad_key_is_a_one_line_400(client: FlaskClient, pg_db: DB) -> None:
    response = client.get("/confirm/signal?key=has%20space")
    assert response.status_code == 400
    assert "a signal key is 1-120 printable characters without spaces" in response.get_data(as_text=True)
