"""The console and tenants: the tenants page (largest backlog first, each tenant's running, failed and queue
wait, a link to its jobs), the job list's tenant filter, the job page's tenant, and a job started from the
console with a tenant, refused in one line past the tenant's quota or for a tenant SQS would refuse."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from pydantic import BaseModel
from sqlalchemy import update

from cli.console.guard import CSRF_FIELD, Guard
from db import DB, JobStatus, Queue, get_job, list_jobs, publish, utcnow
from db.models import jobs_table
from tests.support.factories import insert_job
from tests.support.worker_support import job_type_for_test

pytestmark = pytest.mark.integration


class Row(BaseModel):
    n: int = 0


def test_the_tenants_page_lists_the_largest_backlogs_with_their_queue_wait(client: FlaskClient, pg_db: DB) -> None:
    now = utcnow()
    for _ in range(3):
        insert_job(pg_db, tenant="acme")
    insert_job(pg_db, tenant="globex")
    insert_job(pg_db, tenant="globex", status=JobStatus.PROCESSING, attempts=1, started_at=now)
    insert_job(pg_db, tenant="globex", status=JobStatus.FAILED, attempts=3, max_attempts=3)
    for wait in (2, 4, 6):  # globex's recent completions: first attempts that waited 2, 4 and 6 s
        created = now - timedelta(seconds=30)
        insert_job(
            pg_db, tenant="globex", status=JobStatus.COMPLETED, attempts=1, created_at=created,
            started_at=created + timedelta(seconds=wait), completed_at=now, updated_at=now,
        )  # fmt: skip
    insert_job(pg_db)  # no tenant: not a row of the page
    page = client.get("/tenants").get_data(as_text=True)
    rows = page.split('<tr data-tenant="')[1:]
    assert [r.split('"')[0] for r in rows] == ["acme", "globex"]
    assert '<td class="num">3</td><td class="num">0</td><td class="num">0</td>' in rows[0]
    assert '<td class="num">1</td><td class="num">1</td><td class="num">1</td>' in rows[1]
    assert '<td class="num">4.0 s</td><td class="num">5.8 s</td>' in rows[1]  # p50 and p95 of 2, 4, 6
    assert 'href="/jobs?tenant=globex"' in rows[1]
    assert '<td class="num">-</td><td class="num">-</td>' in rows[0], "no recent completion: no figure"
    assert client.get("/tenants?limit=1").get_data(as_text=True).count('<tr data-tenant="') == 1
    refused = client.get("/tenants?limit=0")
    assert refused.status_code == 400
    assert "limit must be a whole number from 1 to 500, got &#39;0&#39;" in refused.get_data(as_text=True)


def test_the_job_list_filters_by_tenant_and_the_job_page_links_to_it(client: FlaskClient, pg_db: DB) -> None:
    acme = insert_job(pg_db, tenant="acme")
    other = insert_job(pg_db, tenant="globex")
    listed = client.get("/jobs?tenant=acme").get_data(as_text=True)
    assert str(acme.id) in listed and str(other.id) not in listed
    page = client.get(f"/jobs/{acme.id}").get_data(as_text=True)
    assert '<dd id="job-tenant"><a href="/jobs?tenant=acme">acme</a></dd>' in page


def test_a_job_started_from_the_console_has_its_tenant_and_its_quota(
    logged_in: tuple[FlaskClient, Guard], pg_db: DB, queue: Queue
) -> None:
    client, guard = logged_in
    form = {CSRF_FIELD: guard.csrf, "type": "import.rows", "payload": '{"n": 1}', "tenant": "acme"}
    with job_type_for_test("import.rows", Row, print, max_attempts=1, max_pending_per_tenant=1):
        assert 'name="tenant"' in client.get("/enqueue?type=import.rows&as=json").get_data(as_text=True)
        assert client.post("/act/enqueue", data=form).status_code == 200
        over = client.post("/act/enqueue", data=form)
        spaced = client.post("/act/enqueue", data=form | {"tenant": "has space"})
    assert over.status_code == 400
    assert "over its max_pending_per_tenant of 1: nothing was written" in over.get_data(as_text=True)
    assert 'value="acme"' in over.get_data(as_text=True), "the form comes back with the tenant as typed"
    assert spaced.status_code == 400 and "tenant must be 1-128 letters" in spaced.get_data(as_text=True)
    [job] = list_jobs(pg_db, limit=5)
    assert job.tenant == "acme"

    failed = publish(pg_db, "test-echo", {}, queue=queue, tenant="globex")
    with pg_db.begin() as conn:  # it failed for good: the console offers to edit and replay it
        conn.execute(update(jobs_table).where(jobs_table.c.id == failed.id).values(status="failed", attempts=5))
    replay_form = client.get(f"/enqueue?replay={failed.id}&as=json").get_data(as_text=True)
    assert 'id="tenant" name="tenant" value="globex"' in replay_form, "a replay keeps its tenant unless edited"


def test_the_job_page_says_a_parked_job_waits_for_its_turn_and_offers_no_signal(client: FlaskClient, pg_db: DB) -> None:
    job = insert_job(pg_db, status=JobStatus.WAITING, tenant="acme")
    with pg_db.begin() as conn:
        key = {"wait_key": "jobstack:tenant:imports:acme"}
        conn.execute(update(jobs_table).where(jobs_table.c.id == job.id).values(**key))
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "<dt>waits for its turn</dt>" in page and 'id="signal"' not in page


def test_the_overview_counts_jobs_waiting_for_their_turn_apart_from_signals(client: FlaskClient, pg_db: DB) -> None:
    job = insert_job(pg_db, status=JobStatus.WAITING, tenant="acme")
    with pg_db.begin() as conn:
        key = {"wait_key": "jobstack:tenant:imports:acme"}
        conn.execute(update(jobs_table).where(jobs_table.c.id == job.id).values(**key))
    overview = client.get("/").get_data(as_text=True)
    assert '<p class="note" id="turns-waiting">1 job(s) wait for their tenant' in overview
    assert 'data-signal-prefix="jobstack"' not in overview


def test_a_bulk_cancel_of_one_tenants_jobs_touches_and_records_only_that_tenant(
    logged_in: tuple[FlaskClient, Guard], pg_db: DB
) -> None:
    """Crossing of the job list's tenant filter with its bulk actions: the confirmation counts the tenant's jobs,
    the cancel touches only them, and the audit trail names the tenant (it once read "every job")."""
    from db import audit

    client, guard = logged_in
    acme = [insert_job(pg_db, tenant="acme") for _ in range(2)]
    other = insert_job(pg_db, tenant="globex")
    confirm = client.get("/confirm/cancel?tenant=acme").get_data(as_text=True)
    assert "2 job" in confirm
    done = client.post("/act/cancel", data={"tenant": "acme", CSRF_FIELD: guard.csrf})
    assert done.status_code == 200
    assert {get_job(pg_db, j.id).status for j in acme} == {JobStatus.CANCELLED}  # type: ignore[union-attr]
    assert get_job(pg_db, other.id).status is JobStatus.PENDING  # type: ignore[union-attr]
    [entry] = audit.recent(pg_db, limit=1)
    assert entry.action == "cancel" and "tenant=acme" in entry.selection
