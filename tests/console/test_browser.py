"""The console in a real Chromium (Debian's, driven by Playwright): what an operator sees and clicks.

The server runs in this process, on a free port, against the test database and moto's SQS (moto's mock
covers the server's threads too). Each test saves a screenshot of the pages it visits under
.build/test-output/console/.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect, sync_playwright
from sqlalchemy import text

from cli import audit_trail
from cli.console.server import ConsoleServer
from cli.console.worker_presence import LocalWorker
from cli.target import Target
from db import (
    DB,
    Job,
    JobRequest,
    JobStatus,
    Queue,
    claim_job,
    complete_job,
    fail_job,
    get_job,
    list_jobs,
    publish,
    publish_group,
    utcnow,
)
from db.claiming import Invocation
from stacks.pools import output_key
from tests.support import esm
from tests.support.console import (
    CHROMIUM_ARGS,
    ROOT,
    SCREENSHOTS,
    chromium_path,
    deployed_target,
    flag_target,
    running_console,
)
from tests.support.esm import drain
from tests.support.factories import insert_job
from tests.support.queues import moto_mapping
from tests.support.worker_support import CountCalls, job_type_for_test, make_config
from worker.batch import process_batch
from worker.registry import JobContext
from worker.runtime import Runtime

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def console(target: Target, pg_db: DB) -> Iterator[ConsoleServer]:
    with running_console(target) as server:
        yield server


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    def on_dialog(dialog: Dialog) -> None:  # alert(), confirm(): only a script could open one
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("console", on_console)
    page.on("dialog", on_dialog)
    page.problems = problems  # type: ignore[attr-defined]
    yield page
    # Let the page's last requests (its icon, a refresh) finish before the browser goes: a response cut off
    # mid-file leaves the server's file handle to the garbage collector (a ResourceWarning, an error here).
    page.wait_for_load_state("networkidle")
    context.close()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _problems(page: Page) -> list[str]:
    found: list[str] = page.problems  # type: ignore[attr-defined]
    return found


def _seed(db: DB) -> dict[str, Any]:
    now = utcnow()
    failed = insert_job(db, type="test-echo", status=JobStatus.FAILED, attempts=3, max_attempts=3,
                        payload={"to": "ada@example.com"}, error="EchoFailure: smtp said no")  # fmt: skip
    pending = [insert_job(db, type="count-calls") for _ in range(4)]
    # One last change for all six (the chart's bucket): inserted a minute's edge apart, they drew two bars.
    done = [_completed(db, now) for _ in range(6)]
    return {"failed": failed, "pending": pending, "done": done}


def _completed(db: DB, at: datetime) -> Job:
    return insert_job(
        db, type="test-echo", status=JobStatus.COMPLETED, attempts=1, started_at=at, completed_at=at, updated_at=at
    )


def test_the_overview_shows_the_databases_numbers(console: ConsoleServer, page: Page, pg_db: DB) -> None:
    _seed(pg_db)
    page.goto(console.url)
    expect(page.locator('[data-total="pending"]')).to_have_text("4")
    expect(page.locator('[data-total="dead"]')).to_have_text("1")
    expect(page.locator('[data-total="completed"]')).to_have_text("6")
    expect(page.locator('tr[data-type="count-calls"] [data-state="pending"]')).to_have_text("4")
    expect(page.locator("svg.chart rect.bar-completed")).to_have_count(1)
    assert page.url == console.base_url + "/"  # the token left the address bar for a cookie
    shot(page, "overview")
    assert _problems(page) == []


def test_the_overview_refreshes_itself_without_a_reload(console: ConsoleServer, page: Page, pg_db: DB) -> None:
    page.goto(console.url)
    expect(page.locator('[data-total="pending"]')).to_have_text("0")
    page.evaluate("window.__same_document = true")
    insert_job(pg_db, type="count-calls")
    expect(page.locator('[data-total="pending"]')).to_have_text("1", timeout=10_000)
    assert page.evaluate("window.__same_document") is True  # the same document: no reload
    expect(page.locator("#live-state")).to_have_text("live")


def test_filtering_the_job_list(console: ConsoleServer, page: Page, pg_db: DB) -> None:
    seeded = _seed(pg_db)
    page.goto(console.url)
    page.get_by_role("link", name="Jobs", exact=True).click()
    expect(page.locator("#jobs-table tbody tr")).to_have_count(11)
    page.select_option('select[name="status"]', "pending")
    page.fill('input[name="type"]', "count-calls")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#jobs-table tbody tr")
    expect(rows).to_have_count(4)
    assert {r.get_attribute("data-job") for r in rows.all()} == {str(j.id) for j in seeded["pending"]}
    expect(page.locator("#jobs-table thead")).to_contain_text("runs at (UTC)")
    assert "status=pending" in page.url and "type=count-calls" in page.url
    shot(page, "jobs-filtered")
    page.fill('input[name="id"]', "not-hex")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#error-message")).to_contain_text("is not the start of a job id")


def test_a_payload_search_finds_one_customers_two_jobs_among_ten_thousand_and_acts_on_them_alone(
    console: ConsoleServer, page: Page, pg_db: DB
) -> None:
    with pg_db.begin() as conn:  # 10,000 jobs of other customers, in one statement
        conn.execute(
            text(
                "INSERT INTO background_jobs (id, type, payload, status, attempts, max_attempts, created_at, "
                "updated_at) SELECT gen_random_uuid(), 'test-echo', jsonb_build_object('customer_id', n), 'pending', "
                "0, 5, now(), now() FROM generate_series(1, 10000) AS n WHERE n <> 4711"
            )
        )
    theirs = {insert_job(pg_db, payload={"customer_id": 4711, "order": n}).id for n in (1, 2)}
    insert_job(pg_db, payload={"customer_id": "4711"})  # the text "4711" is another customer's id
    page.goto(console.url)
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.fill('input[name="payload"]', "customer_id=4711")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#jobs-table tbody tr")
    expect(rows).to_have_count(2)
    assert {r.get_attribute("data-job") for r in rows.all()} == {str(i) for i in theirs}
    shot(page, "jobs-payload-search")
    page.get_by_role("link", name="Cancel these…").click()  # a bulk action reads the same filter
    expect(page.locator("#summary")).to_contain_text("Cancel 2 job(s)")
    page.locator("#confirm").click()
    expect(page.locator("#result")).to_contain_text("2")
    with pg_db.begin() as conn:
        cancelled = set(conn.execute(text("SELECT id FROM background_jobs WHERE status = 'cancelled'")).scalars())
    assert cancelled == theirs, "the two jobs of customer 4711, and no other"
    page.goto(f"{console.base_url}/jobs?payload=%7Bcustomer_id")
    expect(page.locator("#error-message")).to_contain_text("payload search is not JSON")


def test_each_console_action_leaves_an_audit_row_with_who_did_it(
    console: ConsoleServer, page: Page, pg_db: DB, target: Target
) -> None:
    audit_trail._identity.cache_clear()
    seeded = _seed(pg_db)
    page.goto(console.url)
    page.goto(f"{console.base_url}/jobs/{seeded['failed'].id}")
    page.locator("#retry").click()
    page.locator("#confirm").click()
    expect(page.locator("#result")).to_contain_text("retried 1 job(s)")
    page.goto(f"{console.base_url}/jobs?status=pending&type=count-calls")
    page.get_by_role("link", name="Cancel these…").click()
    page.locator("#confirm").click()
    expect(page.locator("#result")).to_contain_text("cancelled 4")
    page.get_by_role("link", name="Audit", exact=True).click()
    rows = page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(2)
    who = audit_trail.operator(target)
    assert who.startswith("arn:aws:sts::") or who.startswith("os:"), who
    cancel, retry = rows.nth(0), rows.nth(1)
    assert cancel.get_attribute("data-action") == "cancel" and retry.get_attribute("data-action") == "retry"
    expect(cancel).to_contain_text(who)
    expect(cancel).to_contain_text("filter: status=pending type=count-calls")
    expect(cancel.locator("td.num")).to_have_text("4")
    expect(retry).to_contain_text(f"1 job id(s): {str(seeded['failed'].id)[:8]}")
    expect(retry).to_contain_text("console")
    shot(page, "audit")
    assert _problems(page) == []


def test_pausing_and_resuming_a_pools_worker_shows_its_mapping_state_and_is_audited(
    pg_url: str, pg_db: DB, queue: Queue, dlq: Queue, page: Page, closing: Callable[[Target], Target]
) -> None:
    mapping = moto_mapping(queue)
    target = closing(deployed_target(pg_url, {"default": (queue.url, dlq.url)}, {}))
    target.outputs[output_key("default", "EventSourceMappingId")] = mapping
    lambda_ = target.client("lambda")
    with running_console(target) as console:
        page.goto(console.url)
        page.get_by_role("link", name="Pools & routes").click()
        expect(page.locator('[data-worker="default"]')).to_contain_text("enabled")
        page.locator("#pause-default").click()
        expect(page.locator("#summary")).to_contain_text("Pause the worker of pool default")
        assert lambda_.get_event_source_mapping(UUID=mapping)["State"] == "Enabled", "asking changed nothing"
        page.locator("#confirm").click()
        expect(page.locator("#result")).to_contain_text("worker of pool default paused")
        assert lambda_.get_event_source_mapping(UUID=mapping)["State"] in ("Disabled", "Disabling")
        page.goto(f"{console.base_url}/pools")
        expect(page.locator('[data-worker="default"]')).to_contain_text("paused")
        shot(page, "pools-paused")
        page.locator("#resume-default").click()
        page.locator("#confirm").click()
        expect(page.locator("#result")).to_contain_text("worker of pool default resumed")
        page.goto(f"{console.base_url}/pools")
        expect(page.locator('[data-worker="default"]')).to_contain_text("enabled")
        page.goto(f"{console.base_url}/audit")
        expect(page.locator("#audit-table tbody tr")).to_have_count(2)
        assert [r.get_attribute("data-action") for r in page.locator("#audit-table tbody tr").all()] == [
            "resume",
            "pause",
        ]
        assert _problems(page) == []


def test_opening_a_failed_job_and_retrying_it(console: ConsoleServer, page: Page, pg_db: DB, queue: Queue) -> None:
    failed = _seed(pg_db)["failed"]
    page.goto(console.url)
    page.goto(f"{console.base_url}/jobs?status=failed")
    page.locator(f'tr[data-job="{failed.id}"] a').click()
    expect(page.locator("#job-status")).to_have_text("failed")
    expect(page.locator("#job-error")).to_have_text("EchoFailure: smtp said no")
    expect(page.locator("#job-payload")).to_contain_text('"to": "ada@example.com"')
    shot(page, "job-failed")
    page.locator("#retry").click()
    expect(page.locator("#summary")).to_contain_text("Retry 1 job(s)")
    shot(page, "confirm-retry")
    assert get_job(pg_db, failed.id).status is JobStatus.FAILED  # type: ignore[union-attr]  # asking changed nothing
    page.locator("#confirm").click()
    expect(page.locator("#result")).to_contain_text("retried 1 job(s)")
    shot(page, "retried")
    row = get_job(pg_db, failed.id)
    assert row is not None and row.status is JobStatus.PENDING and row.attempts == 0 and row.sent_at is not None
    [message] = drain(queue)
    assert json.loads(message["Body"])["jobId"] == str(failed.id)


def test_a_script_in_a_payload_runs_nowhere(console: ConsoleServer, page: Page, pg_db: DB) -> None:
    hostile = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    job = insert_job(pg_db, status=JobStatus.FAILED, attempts=1, max_attempts=1, payload={"html": hostile},
                     error=hostile)  # fmt: skip
    page.goto(console.url)
    for path in ("/", "/jobs", f"/jobs/{job.id}"):
        page.goto(console.base_url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("typeof window.__pwned") == "undefined", path
        assert page.locator("script:not([src])").count() == 0
        assert page.locator("img[src='x']").count() == 0  # shown as text, never parsed as a tag
    expect(page.locator("#job-payload")).to_contain_text("<script>window.__pwned = 1</script>")
    shot(page, "hostile-payload")
    assert not [p for p in _problems(page) if p.startswith("dialog")]


def test_a_wrong_token_gets_403(console: ConsoleServer, page: Page) -> None:
    response = page.goto(console.url[:-3] + "xyz")
    assert response is not None and response.status == 403
    expect(page.locator("#error-message")).to_contain_text("wrong token")
    shot(page, "wrong-token")
    response = page.goto(console.base_url + "/jobs")
    assert response is not None and response.status == 403  # and no cookie was given for it


def test_read_only_mode_hides_the_actions(target: Target, pg_db: DB, page: Page) -> None:
    failed = _seed(pg_db)["failed"]
    with running_console(target, read_only=True) as console:
        page.goto(console.url)
        expect(page.locator(".badge.read-only")).to_have_text("read-only")
        page.goto(f"{console.base_url}/jobs/{failed.id}")
        expect(page.locator("#job-status")).to_have_text("failed")
        expect(page.locator("#retry")).to_have_count(0)
        expect(page.locator("#cancel")).to_have_count(0)
        page.goto(f"{console.base_url}/jobs?status=failed")
        expect(page.get_by_text(re.compile("Retry these"))).to_have_count(0)
        shot(page, "read-only")
        response = page.goto(f"{console.base_url}/confirm/retry?job={failed.id}")
        assert response is not None and response.status == 403
        page.goto(f"{console.base_url}/jobs")
        expect(page.locator("#start-job")).to_have_count(0)
        response = page.goto(f"{console.base_url}/enqueue")
        assert response is not None and response.status == 403


def test_dead_letters_schedules_and_pools_pages_render(
    console: ConsoleServer, page: Page, pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    from worker.contract import DEAD_LETTER_KIND, DEAD_LETTER_REASON

    failed = _seed(pg_db)["failed"]
    queue.client.send_message(
        QueueUrl=dlq.url,
        MessageBody=json.dumps({"jobId": str(failed.id), "type": "test-echo"}),
        MessageAttributes={
            DEAD_LETTER_KIND: {"DataType": "String", "StringValue": "failed"},
            DEAD_LETTER_REASON: {"DataType": "String", "StringValue": "EchoFailure: smtp said no"},
        },
    )
    page.goto(console.url)
    page.get_by_role("link", name="Dead letters").click()
    expect(page.locator('[data-kind="failed"] .count')).to_have_text("1")
    arrived = page.locator('[data-kind="failed"] td.arrived').inner_text()
    assert datetime.strptime(arrived, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) > utcnow() - timedelta(minutes=5)
    page.locator("details summary").first.click()
    expect(page.locator("details pre").first).to_contain_text(str(failed.id))
    shot(page, "dead-letters")
    page.get_by_role("link", name="Schedules").click()
    expect(page.locator("#schedules-table")).to_be_visible()
    shot(page, "schedules")
    page.get_by_role("link", name="Pools & routes").click()
    expect(page.get_by_text(dlq.url.rsplit("/", 1)[-1])).to_be_visible()
    shot(page, "pools")
    assert _problems(page) == []


def test_the_refusal_page_is_styled_and_the_session_cookie_is_this_consoles_own(
    target: Target, pg_db: DB, page: Page
) -> None:
    """A refusal loads its stylesheet (no error in the browser); the cookie the token is exchanged for is
    named for this console's port and holds no token, so a second console beside it keeps its own."""
    with running_console(target) as first, running_console(target, read_only=True) as second:
        statics: list[tuple[str, int]] = []
        page.on("response", lambda r: statics.append((r.url, r.status)) if "/static/" in r.url else None)
        refused = page.goto(first.base_url + "/jobs")
        assert refused is not None and refused.status == 403
        assert "system-ui" in page.evaluate("getComputedStyle(document.body).fontFamily")  # console.css applied
        assert statics and all(status == 200 for _, status in statics), statics
        # Chromium reports the refused page itself (one line); nothing else failed to load (the page names its
        # icon, so the browser does not ask for /favicon.ico, which would be refused too)
        assert len(_problems(page)) == 1 and "403" in _problems(page)[0], _problems(page)
        page.goto(first.url)
        page.goto(second.url)
        cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        assert set(cookies) == {first.guard.cookie, second.guard.cookie}
        assert first.guard.token not in cookies.values() and second.guard.token not in cookies.values()
        assert page.goto(first.base_url + "/jobs").status == 200  # type: ignore[union-attr]  # still signed in
        assert page.goto(second.base_url + "/jobs").status == 200  # type: ignore[union-attr]
        shot(page, "two-consoles")


def test_a_finished_job_offers_no_retry_or_cancel_and_the_refresh_toggle_says_what_it_stops(
    console: ConsoleServer, page: Page, pg_db: DB
) -> None:
    """Reported: Retry… and Cancel… were offered on a completed job (both then refused), and the header's
    "pause" read like `jobstack pause`, which stops the worker, when it stops this page's refresh."""
    seeded = _seed(pg_db)
    page.goto(console.url)
    page.goto(f"{console.base_url}/jobs/{seeded['done'][0].id}")
    expect(page.locator("#job-status")).to_have_text("completed")
    expect(page.locator("#retry")).to_have_count(0)
    expect(page.locator("#cancel")).to_have_count(0)
    page.goto(f"{console.base_url}/jobs/{seeded['failed'].id}")  # a failed one still offers both
    expect(page.locator("#retry")).to_have_count(1)
    page.goto(console.base_url + "/")
    toggle = page.locator("button.pause")
    expect(toggle).to_have_text("stop refreshing")
    toggle.click()
    expect(toggle).to_have_text("refresh again")
    shot(page, "refresh-stopped")
    assert _problems(page) == []


def test_a_retry_says_when_no_worker_will_take_the_job(console: ConsoleServer, page: Page, pg_db: DB) -> None:
    """Reported: on a console left up after `make local`'s worker exited, Retry said "retried 1 job(s)" and
    the job stayed pending for good, with only "worker: not deployed here" as a hint. The overview now says
    the local run has exited, and the result says nothing will take the job and what to run."""
    failed = _seed(pg_db)["failed"]
    console.sources.local_worker = LocalWorker("work them from another shell: export QUEUE_URL=...")
    page.goto(console.url)
    expect(page.locator('[data-field="worker"]')).to_have_text("running here")
    console.sources.local_worker.stopped()  # what `jobstack local` does when its run ends
    page.reload()
    expect(page.locator('[data-field="worker"]')).to_have_text("jobstack local exited")
    page.goto(f"{console.base_url}/jobs/{failed.id}")
    page.locator("#retry").click()
    page.locator("#confirm").click()
    expect(page.locator("#result")).to_contain_text("retried 1 job(s)")
    expect(page.locator("#result")).to_contain_text(
        "no worker runs on this queue now (jobstack local has exited): the jobs wait in it; work them from "
        "another shell: export QUEUE_URL=..."
    )
    shot(page, "retried-no-worker")
    assert _problems(page) == []


def test_a_retry_while_the_local_worker_runs_adds_no_warning(console: ConsoleServer, page: Page, pg_db: DB) -> None:
    failed = _seed(pg_db)["failed"]
    console.sources.local_worker = LocalWorker("work them from another shell")
    page.goto(console.url)
    page.goto(f"{console.base_url}/jobs/{failed.id}")
    page.locator("#retry").click()
    page.locator("#confirm").click()
    expect(page.locator("#result li")).to_have_count(1)
    expect(page.locator("#result")).to_contain_text("retried 1 job(s)")


def test_the_counts_note_names_postgresqls_estimate_only_on_postgresql(
    console: ConsoleServer, page: Page, sqlite_db: DB, queue: Queue, dlq: Queue, closing: Any
) -> None:
    """Reported: "PostgreSQL's estimate" was explained on a console over SQLite, which never estimates."""
    page.goto(console.url)
    expect(page.locator("#counts-note")).to_contain_text("PostgreSQL's estimate")
    url = sqlite_db.engine.url.render_as_string(hide_password=False)
    with running_console(closing(flag_target(url, queue.url, dlq.url))) as on_sqlite:
        page.goto(on_sqlite.url)
        expect(page.locator("#counts-note")).to_contain_text("SQLite has no planner estimate")
        expect(page.locator("#counts-note")).not_to_contain_text("PostgreSQL")
        shot(page, "overview-sqlite")
    assert _problems(page) == []


def test_a_callbacks_queue_wait_starts_at_its_release(
    console: ConsoleServer, page: Page, pg_db: DB, queue: Queue, pg_runtime: Any, seen: Any
) -> None:
    """Reported: the overview's queue wait of a workflow callback counted the hour it waited for its members."""
    group = publish_group(pg_db, [JobRequest("wf-member", {"n": 1})], then=JobRequest("wf-callback", {}), queue=queue)
    with pg_db.begin() as conn:  # as if the group had been published an hour ago and its member took that long
        conn.execute(text("UPDATE background_jobs SET created_at = now() - interval '1 hour'"))
    for _ in range(2):  # the member, then the callback its completion released
        esm.deliver(queue, lambda event, ctx: process_batch(event, ctx, pg_runtime))
    assert group.then is not None and _status(pg_db, group.then.id) is JobStatus.COMPLETED
    page.goto(console.url)
    callback = page.locator('[data-wait-type="wf-callback"] [data-field="wait-p50"]')
    member = page.locator('[data-wait-type="wf-member"] [data-field="wait-p50"]')
    expect(member).to_have_text(re.compile(r"\d"))
    assert _shown_seconds(member.inner_text()) >= 3500  # a member did wait the hour (created, then run)
    assert _shown_seconds(callback.inner_text()) < 60  # the callback only from its release
    shot(page, "overview-callback-wait")


def test_a_25_member_group_is_drawn_as_a_graph_with_each_jobs_state(
    console: ConsoleServer, page: Page, pg_db: DB, queue: Queue
) -> None:
    members = [JobRequest("test-echo", {"n": n}) for n in range(25)]
    group = publish_group(pg_db, members, then=JobRequest("test-echo", {"callback": True}), queue=queue)
    ids = [j.id for j in group.jobs]
    with pg_db.begin() as conn:  # ten completed, five failed for good, three running, seven still pending
        for status, chosen, attempts in (
            ("completed", ids[:10], 1),
            ("failed", ids[10:15], 5),
            ("processing", ids[15:18], 1),
        ):
            conn.execute(
                text("UPDATE background_jobs SET status = :s, attempts = :a, max_attempts = 5 WHERE id = ANY(:ids)"),
                {"s": status, "a": attempts, "ids": chosen},
            )
    assert group.then is not None
    page.goto(console.url)
    page.goto(f"{console.base_url}/jobs/{ids[0]}")
    page.locator("#job-workflow").click()
    nodes = page.locator("#workflow-graph g.node")
    expect(nodes).to_have_count(26)
    drawn = {n.get_attribute("data-job"): n.get_attribute("data-state") for n in nodes.all()}
    expected = {str(i): "completed" for i in ids[:10]} | {str(i): "dead" for i in ids[10:15]}
    expected |= {str(i): "processing" for i in ids[15:18]} | {str(i): "pending" for i in ids[18:]}
    assert drawn == expected | {str(group.then.id): "waiting"}
    expect(page.locator("#workflow-graph line.edge")).to_have_count(25)  # each member to the callback
    expect(page.locator("#workflow-states")).to_contain_text("26 job(s)")
    shot(page, "workflow-graph")
    page.locator(f'#workflow-graph g.node[data-job="{group.then.id}"]').click()
    expect(page.locator("#job-status")).to_have_text("waiting")
    assert _problems(page) == []


def test_a_failed_jobs_payload_is_edited_refused_by_its_schema_then_replayed_as_a_linked_job(
    console: ConsoleServer, page: Page, pg_db: DB, queue: Queue
) -> None:
    failed = insert_job(pg_db, type="welcome-email", payload={"email": "ada@example"}, status=JobStatus.FAILED,
                        attempts=5, max_attempts=5, error="SMTPRecipientsRefused: no such domain")  # fmt: skip
    page.goto(console.url)
    page.goto(f"{console.base_url}/jobs/{failed.id}")
    page.locator("#replay").click()
    expect(page.locator("#field-email")).to_have_value("ada@example")  # the schema's field, the failed payload
    page.locator("#publish").click()  # unchanged: the schema refuses it, and nothing is written
    expect(page.locator("#enqueue-error")).to_contain_text("email")
    expect(page.locator("#field-email")).to_have_value("ada@example")  # the form keeps what was sent
    with pg_db.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM background_jobs")).scalar() == 1
    page.fill("#field-email", "ada@example.com")
    page.locator("#publish").click()
    expect(page.locator("#result")).to_contain_text(f"a replay of job {failed.id}")
    with pg_db.begin() as conn:
        [new_id] = conn.execute(text("SELECT id FROM background_jobs WHERE id <> :old"), {"old": failed.id}).scalars()
    new = get_job(pg_db, new_id)
    assert new is not None and new.payload == {"email": "ada@example.com"} and new.attempts == 0
    old = get_job(pg_db, failed.id)
    assert old is not None and old.status is JobStatus.FAILED and old.payload == {"email": "ada@example"}, "kept"
    page.goto(f"{console.base_url}/jobs/{new_id}")
    expect(page.locator("#replay-of")).to_have_text(str(failed.id))
    page.goto(f"{console.base_url}/jobs/{failed.id}")
    expect(page.locator(".replayed-as")).to_have_text(str(new_id))
    shot(page, "replayed")
    page.goto(f"{console.base_url}/audit")
    expect(page.locator('#audit-table tr[data-action="replay"]')).to_contain_text(f"replay of job {failed.id}")
    refused = "Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"
    assert _problems(page) == [refused], "the refused form alone answered 400"


def test_a_job_started_from_the_console_is_checked_published_to_its_queue_and_run(
    console: ConsoleServer, page: Page, pg_db: DB, queue: Queue, pg_runtime: Any
) -> None:
    page.goto(console.url)
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.locator("#start-job").click()
    page.select_option("#enqueue-type", "welcome-email")
    page.locator("#load-type").click()
    expect(page.locator("#schema")).to_contain_text('"pattern"')
    expect(page.locator("#field-email")).to_have_value("")  # a field per property of the schema
    page.locator("#as-json").click()  # the same payload as JSON, the schema's skeleton
    expect(page.locator("#payload")).to_have_value(re.compile(r'"email": ""'))
    page.locator("#as-fields").click()
    page.fill("#field-email", "grace@example.com")
    page.locator("#publish").click()
    expect(page.locator("#result")).to_contain_text("published welcome-email job")
    [job_id] = [j.id for j in list_jobs(pg_db)]
    esm.deliver(queue, lambda event, ctx: process_batch(event, ctx, pg_runtime))  # the worker takes its message
    assert _status(pg_db, job_id) is JobStatus.COMPLETED
    page.goto(f"{console.base_url}/audit")
    expect(page.locator('#audit-table tr[data-action="publish"]')).to_contain_text("type welcome-email")
    assert _problems(page) == []


def test_a_jobs_page_keeps_every_attempt_across_three_failures_and_a_retry(
    console: ConsoleServer, page: Page, pg_db: DB
) -> None:
    job = insert_job(pg_db, type="test-echo", max_attempts=3)
    for attempt in (1, 2, 3):  # each by its own invocation, named as Lambda names it
        named = Invocation(f"0b5d5c4e-1f2a-4b3c-8d9e-0f1a2b3c4d5{attempt}", f"1-6756a1b2-{attempt:024x}")
        assert claim_job(pg_db, job.id, stale_after=timedelta(minutes=5), invocation=named).job is not None
        assert fail_job(pg_db, job.id, f"TimeoutError: upstream, try {attempt}", attempt=attempt)
    page.goto(console.url)
    page.goto(f"{console.base_url}/jobs/{job.id}")
    rows = page.locator("#job-attempts tbody tr")
    expect(rows).to_have_count(3)
    page.locator("#retry").click()
    page.locator("#confirm").click()
    expect(page.locator("#result")).to_contain_text("retried 1 job(s)")
    assert claim_job(pg_db, job.id, stale_after=timedelta(minutes=5)).job is not None
    assert complete_job(pg_db, job.id, attempt=1)
    page.goto(f"{console.base_url}/jobs/{job.id}")
    expect(rows).to_have_count(4)  # the retry erased none
    assert [r.get_attribute("data-outcome") for r in rows.all()] == ["failed", "failed", "failed", "completed"]
    expect(rows.nth(1)).to_contain_text("TimeoutError: upstream, try 2")
    expect(rows.nth(1).locator("td.invocation")).to_contain_text("0b5d5c4e-1f2a-4b3c-8d9e-0f1a2b3c4d52")
    expect(rows.nth(1).locator("td.invocation")).to_contain_text(f"1-6756a1b2-{2:024x}")
    shot(page, "job-attempts")
    assert _problems(page) == []


def test_a_job_started_in_the_console_of_a_local_run_is_run_by_jobstack_local(tmp_path: Path, page: Page) -> None:
    """`jobstack local --console` (embedded SQS and SQLite, a real process): a job started from the console's
    form goes to the run's queue, and the run's worker completes it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "QUEUE_URL", "DLQ_URL"))}
    run = subprocess.Popen(
        [sys.executable, "-m", "cli", "local", "--sqlite", str(tmp_path / "local.sqlite3"), "--console"],
        cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert run.stderr is not None
        url = None
        for _ in range(200):  # its first lines: the queue, the worker, then the console's URL
            line = run.stderr.readline()
            found = re.search(r"jobstack console on this run: (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "jobstack local --console printed no console URL"
        page.goto(url)
        page.get_by_role("link", name="Jobs", exact=True).click()
        page.locator("#start-job").click()
        page.select_option("#enqueue-type", "test-echo")
        page.locator("#load-type").click()
        page.fill("#payload", '{"by": "hand"}')
        page.locator("#publish").click()
        expect(page.locator("#result")).to_contain_text("published test-echo job")
        page.get_by_role("link", name="Back").click()
        expect(page.locator("#job-status")).to_have_text("completed", timeout=20_000)  # the job's page refreshes
        expect(page.locator("#job-payload")).to_contain_text('"by": "hand"')
    finally:
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=30)


def _shown_seconds(shown: str) -> float:
    """The console's `seconds` filter read back: "250 ms" or "3600.0 s"."""
    number, unit = shown.split()
    return float(number) / (1000 if unit == "ms" else 1)


def _status(db: DB, job_id: Any) -> JobStatus:
    job = get_job(db, job_id)
    assert job is not None
    return job.status


def test_a_running_jobs_progress_and_steps_show_live_on_its_page(
    console: ConsoleServer, page: Page, pg_db: DB, pg_url: str, queue: Queue, dlq: Queue
) -> None:
    """The job page open while the job runs: its progress report and its completed step appear without a
    reload, and the page keeps refreshing until the job has completed."""
    go, seen = threading.Event(), threading.Event()

    def handler(ctx: JobContext) -> str:
        assert go.wait(30)
        ctx.step("render", lambda: "page-40")
        ctx.progress(0.4, "rendering page 40 of 100")
        assert seen.wait(30)
        return "done"

    with job_type_for_test("long-render", CountCalls, handler, max_attempts=1):
        job = publish(pg_db, "long-render", {}, queue=queue)
        runtime = Runtime(make_config(pg_url, queue, dlq), db=pg_db, sqs=queue.client)
        event = esm.receive_event(queue)
        worker = threading.Thread(target=process_batch, args=(event, esm.FakeLambdaContext(), runtime))
        worker.start()
        try:
            page.goto(console.url)  # the token becomes the session's cookie
            page.goto(f"{console.base_url}/jobs/{job.id}")
            expect(page.locator("#job-live-status")).to_have_text("processing", timeout=10_000)
            page.evaluate("window.__same_document = true")
            go.set()
            expect(page.locator("#job-progress-message")).to_have_text("rendering page 40 of 100", timeout=15_000)
            expect(page.locator("#job-progress-percent")).to_have_text("40%")
            expect(page.locator("#job-steps")).to_contain_text("render")
            shot(page, "job-progress")
            assert page.evaluate("window.__same_document") is True  # refreshed in place, not reloaded
        finally:
            go.set()
            seen.set()
            worker.join(30)
        expect(page.locator("#job-live-status")).to_have_text("completed", timeout=15_000)
    assert _problems(page) == []
