"""Every console route against real PostgreSQL and moto's SQS: what it shows, what it refuses, and that
only a confirmed POST changes anything."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from flask.testing import FlaskClient
from pydantic import BaseModel

from cli.console.guard import CONTENT_SECURITY_POLICY, CSRF_FIELD, Guard
from cli.target import Target
from db import DB, JobRequest, JobStatus, Queue, get_job, list_jobs, utcnow
from db.job_types import register_job_type, unregister_job_type
from db.models import jobs_table
from db.workflows import publish_group
from tests.support.console import cells, client_for, deployed_target, flag_target, number, page_facts, visible
from tests.support.esm import drain
from tests.support.factories import insert_job
from tests.support.queues import queue_pair
from tests.support.workflows import Seen
from worker.contract import DEAD_LETTER_KIND, DEAD_LETTER_REASON, DeadLetterKind

pytestmark = pytest.mark.integration
Closing = Callable[[Target], Target]

PAGES = [
    "/",
    "/live/overview",
    "/jobs",
    "/live/jobs",
    "/dead-letters",
    "/schedules",
    "/pools",
    "/audit",
    "/confirm/retry?status=failed",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_route_without_the_token_is_403(target: Target, pg_db: DB, path: str) -> None:
    client, _ = client_for(target, log_in=False)
    response = client.get(path)
    assert response.status_code == 403
    assert b"no token" in response.data
    assert target.stack_name.encode() not in response.data  # a refusal names nothing of the target


def test_a_wrong_token_is_403_and_the_right_one_becomes_a_cookie(target: Target, pg_db: DB) -> None:
    client, guard = client_for(target, log_in=False)
    assert client.get(f"/jobs?token={guard.token[:-1]}x").status_code == 403
    assert client.get("/jobs").status_code == 403  # the wrong token left no cookie
    response = client.get(f"/jobs?status=failed&token={guard.token}")
    assert response.status_code == 303
    assert response.headers["Location"] == "/jobs?status=failed"  # the token leaves the address bar
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/jobs?status=failed").status_code == 200


def test_the_cookie_is_named_for_the_port_and_holds_a_session_never_the_token(target: Target, pg_db: DB) -> None:
    """Browsers send a cookie to every port of 127.0.0.1: another local server must not learn the token,
    and a second console (prod read-only beside dev) must not replace the first one's cookie."""
    client, guard = client_for(target, log_in=False)
    set_cookie = client.get(f"/?token={guard.token}").headers["Set-Cookie"]
    name, value = set_cookie.split(";", 1)[0].split("=", 1)
    assert name == f"jobstack_console_{guard.port}" and value != guard.token and guard.token not in set_cookie
    other = Guard("127.0.0.1", guard.port + 1)
    assert other.cookie != guard.cookie
    stolen, _ = client_for(target, log_in=False)
    stolen.set_cookie(guard.cookie, guard.token, domain="127.0.0.1")  # the token itself is no session
    assert stolen.get("/jobs").status_code == 403


def test_static_files_need_no_session_so_a_refusal_page_is_styled(target: Target, pg_db: DB) -> None:
    client, _ = client_for(target, log_in=False)
    refused = client.get("/jobs")
    assert refused.status_code == 403
    assert 'href="/static/console.css"' in refused.get_data(as_text=True)
    with client.get("/static/console.css") as css:
        assert css.status_code == 200 and "text/css" in css.content_type
    assert client.post("/static/console.css").status_code in (403, 405)  # only a GET, only the files


def test_another_host_name_is_refused_even_with_the_token(target: Target, pg_db: DB) -> None:
    """DNS rebinding: a hostile page whose own name resolves to 127.0.0.1 sends its own name as Host."""
    client, guard = client_for(target)
    assert client.get("/", headers={"Host": "attacker.example:8787"}).status_code == 403
    assert client.get(f"/?token={guard.token}", headers={"Host": "attacker.example:8787"}).status_code == 403
    assert client.get(f"/?token={guard.token}", headers={"Host": "localhost:8787"}).status_code == 303


@pytest.mark.parametrize("path", PAGES)
def test_every_page_carries_the_security_headers_and_no_inline_script(
    client: FlaskClient, pg_db: DB, path: str
) -> None:
    insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5, error="boom")
    response = client.get(path)
    assert response.status_code == 200, response.data[:300]
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"
    facts = page_facts(response.get_data(as_text=True))
    assert facts.inline_scripts == 0 and facts.inline_handlers == [] and facts.inline_styles == 0
    assert facts.foreign == []  # every script, style and link is this server's (no CDN)


def test_static_assets_are_served_from_the_package(client: FlaskClient) -> None:
    for name, kind in (("console.js", "javascript"), ("console.css", "text/css"), ("favicon.svg", "svg")):
        with client.get(f"/static/{name}") as response:
            assert response.status_code == 200 and kind in response.content_type


def test_the_overview_counts_match_the_database(client: FlaskClient, pg_db: DB) -> None:
    now = utcnow()
    for _ in range(3):
        insert_job(pg_db, type="test-echo", status=JobStatus.PENDING)
    insert_job(pg_db, type="count-calls", status=JobStatus.PENDING)
    insert_job(pg_db, type="test-echo", status=JobStatus.FAILED, attempts=1, max_attempts=5)
    insert_job(pg_db, type="test-echo", status=JobStatus.FAILED, attempts=5, max_attempts=5)
    for minutes in (1, 2):
        done = now - timedelta(minutes=minutes)
        insert_job(
            pg_db, type="count-calls", status=JobStatus.COMPLETED, attempts=1, created_at=done - timedelta(seconds=60),
            started_at=done - timedelta(seconds=30), completed_at=done, updated_at=done,
        )  # fmt: skip
    insert_job(pg_db, type="test-echo", status=JobStatus.COMPLETED, updated_at=now - timedelta(days=3))  # outside 24 h
    insert_job(pg_db, type="count-calls", status=JobStatus.WAITING)  # a group's callback
    page = client.get("/").get_data(as_text=True)
    totals = {name: number(text) for name, text in cells(page, "data-total").items()}
    assert totals == {
        "pending": 4, "scheduled": 0, "waiting": 1, "processing": 0, "retrying": 1, "dead": 1, "completed": 2,
        "cancelled": 0,
    }  # fmt: skip
    with pg_db.autocommit() as conn:
        pending = conn.execute(jobs_table.select().where(jobs_table.c.status == "pending")).all()
    assert totals["pending"] == len(pending)
    echo_row = page[page.index('data-type="test-echo"') :].split("</tr>", 1)[0]
    assert {k: number(v) for k, v in cells(echo_row, "data-state").items()}["pending"] == 3
    assert "1 completed" in page or "completed 2" in page  # the chart's totals
    assert re.search(r"<td>count-calls</td><td class=\"num\">2</td>", page)  # 2 completions timed
    assert 'data-field="visible">0<' in page  # the queue's own depth, from SQS


def test_the_overview_in_a_deployed_stack_has_a_row_per_pool(
    pg_url: str, sqs: object, pg_db: DB, closing: Closing
) -> None:
    target, video, video_dlq = _two_pools(sqs, pg_url, closing)
    video.client.send_message(QueueUrl=video_dlq.url, MessageBody="{}")
    client, _ = client_for(target)
    page = client.get("/").get_data(as_text=True)
    rows = dict(re.findall(r'<tr data-pool="([^"]+)">(.*?)</tr>', page, flags=re.S))
    assert set(rows) == {"default", "video"}
    assert number(cells(rows["video"], "data-field")["dlq"]) == 1
    assert number(cells(rows["default"], "data-field")["dlq"]) == 0
    assert "JobsStack-dev" in page


def _two_pools(sqs: Any, pg_url: str, closing: Closing) -> tuple[Target, Queue, Queue]:
    """A deployed stack's target with two pools: count-calls routed to `video`, the rest to `default`."""
    default, default_dlq = queue_pair(sqs, "main")
    video, video_dlq = queue_pair(sqs, "video")
    pools = {"default": (default.url, default_dlq.url), "video": (video.url, video_dlq.url)}
    return closing(deployed_target(pg_url, pools, {"count-calls": "video"})), video, video_dlq


def test_the_job_list_filters_by_each_field(client: FlaskClient, pg_db: DB) -> None:
    now = utcnow()
    old = insert_job(pg_db, type="test-echo", status=JobStatus.FAILED, created_at=now - timedelta(days=2))
    keyed = insert_job(pg_db, type="count-calls", idempotency_key="order-7")
    fresh = insert_job(pg_db, type="test-echo")

    def listed(query: str) -> set[UUID]:
        response = client.get(f"/jobs?{query}")
        assert response.status_code == 200, response.data[:300]
        return {UUID(i) for i in re.findall(r'data-job="([^"]+)"', response.get_data(as_text=True))}

    assert listed("") == {old.id, keyed.id, fresh.id}
    assert listed("status=failed") == {old.id}
    assert listed("type=count-calls") == {keyed.id}
    assert listed("key=order-7") == {keyed.id}
    assert listed("from=1d") == {keyed.id, fresh.id}
    assert listed(f"to={(now - timedelta(days=1)).isoformat()}".replace("+", "%2B")) == {old.id}
    assert listed(f"id={str(fresh.id)[:8]}") == {fresh.id}
    assert listed("status=pending&type=test-echo") == {fresh.id}


def test_a_deployed_stacks_pool_filter_lists_the_types_routed_to_it(
    pg_url: str, sqs: object, pg_db: DB, closing: Closing
) -> None:
    target, _, _ = _two_pools(sqs, pg_url, closing)
    echo, calls = insert_job(pg_db, type="test-echo"), insert_job(pg_db, type="count-calls")
    client, _ = client_for(target)
    video_page = client.get("/jobs?pool=video").get_data(as_text=True)
    default_page = client.get("/jobs?pool=default").get_data(as_text=True)
    assert str(calls.id) in video_page and str(echo.id) not in video_page
    assert str(echo.id) in default_page and str(calls.id) not in default_page
    assert client.get("/jobs?pool=nope").status_code == 400


def test_a_priority_lanes_pool_lists_the_jobs_published_to_it_and_the_other_pools_leave_them_out(
    pg_url: str, sqs: object, pg_db: DB, closing: Closing
) -> None:
    default, default_dlq = queue_pair(sqs, "main")
    video, video_dlq = queue_pair(sqs, "video")
    urgent, urgent_dlq = queue_pair(sqs, "urgent")
    pools = {"default": (default.url, default_dlq.url), "video": (video.url, video_dlq.url),
             "urgent": (urgent.url, urgent_dlq.url)}  # fmt: skip
    target = closing(deployed_target(pg_url, pools, {"count-calls": "video"}, {"high": "urgent"}))
    echo, calls = insert_job(pg_db, type="test-echo"), insert_job(pg_db, type="count-calls")
    high_echo, high_calls = (insert_job(pg_db, type=t, priority="high") for t in ("test-echo", "count-calls"))
    client, _ = client_for(target)

    def listed(pool: str) -> set[UUID]:
        page = client.get(f"/jobs?pool={pool}").get_data(as_text=True)
        return {UUID(i) for i in re.findall(r'data-job="([^"]+)"', page)}

    assert listed("urgent") == {high_echo.id, high_calls.id}
    assert listed("video") == {calls.id} and listed("default") == {echo.id}
    assert "jobs published with priority high" in client.get("/pools").get_data(as_text=True)


def test_the_job_list_pages_by_keyset_through_every_job_once(client: FlaskClient, pg_db: DB) -> None:
    base = utcnow()
    made = {insert_job(pg_db, created_at=base - timedelta(seconds=n // 3)).id for n in range(120)}  # ties too
    seen: list[UUID] = []
    url: str | None = "/jobs"
    pages = 0
    while url:
        page = client.get(url).get_data(as_text=True)
        assert "OFFSET" not in page
        seen += [UUID(i) for i in re.findall(r'data-job="([^"]+)"', page)]
        found = re.search(r'href="(/jobs\?[^"]*after=[^"]+)" id="next-page"', page)
        url = found.group(1).replace("&amp;", "&") if found else None
        pages += 1
    assert pages == 3 and len(seen) == 120 and set(seen) == made


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("status=bogus", "status 'bogus' is not one of"),
        ("id=xyz", "id prefix 'xyz' is not the start of a job id"),
        ("from=yesterday", "from: 'yesterday' is neither a duration"),
        ("after=garbage", "page cursor 'garbage' is not one this list gave"),
    ],
)
def test_bad_filters_are_one_line_400s(client: FlaskClient, pg_db: DB, query: str, says: str) -> None:
    response = client.get(f"/jobs?{query}")
    assert response.status_code == 400
    assert says in response.get_data(as_text=True).replace("&#39;", "'")
    assert "Traceback" not in response.get_data(as_text=True)


def test_job_detail_shows_the_row_and_escapes_the_payload(client: FlaskClient, pg_db: DB) -> None:
    job = insert_job(
        pg_db, payload={"html": "<script>alert(1)</script>", "n": 1}, status=JobStatus.FAILED, attempts=5,
        max_attempts=5, error="ValueError: <b>bad</b>", sent_at=utcnow() + timedelta(seconds=1),
    )  # fmt: skip
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "ValueError: &lt;b&gt;bad&lt;/b&gt;" in page
    assert "5 of 5" in page and ">created<" not in page  # the timeline's entries are text, not tags
    assert re.search(r"</time> created</li>.*</time> sent</li>", page, flags=re.S)
    assert client.get(f"/jobs/{UUID(int=1)}").status_code == 404
    assert client.get("/jobs/not-a-uuid").status_code == 400


def test_job_detail_names_the_lane_and_the_trace_that_published_it(client: FlaskClient, pg_db: DB) -> None:
    """The operator's first question about a slow job, "which request published it?": the publisher's trace
    id (what the web app's log lines carry as correlation_id), and the lane it ran in."""
    traced = insert_job(pg_db, priority="high", traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    page = client.get(f"/jobs/{traced.id}").get_data(as_text=True)
    assert re.search(r'id="job-trace"[^>]*>0af7651916cd43dd8448eb211c80319c<', page)
    assert '<dd id="job-priority">high</dd>' in page
    plain = client.get(f"/jobs/{insert_job(pg_db).id}").get_data(as_text=True)
    assert 'id="job-trace"' not in plain and 'id="job-priority"' not in plain


def test_a_big_payload_is_cut_with_a_pointer_to_the_cli(client: FlaskClient, pg_db: DB) -> None:
    job = insert_job(pg_db, payload={"blob": "x" * 100_000})
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert f"jobstack show {job.id} --json" in page
    assert len(page) < 80_000


def test_retry_asks_first_then_a_post_with_the_csrf_token_retries(
    logged_in: tuple[FlaskClient, Guard], pg_db: DB, queue: Queue
) -> None:
    client, guard = logged_in
    job = insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5, error="boom")
    confirm = client.get(f"/confirm/retry?job={job.id}").get_data(as_text=True)
    assert "Retry 1 job(s)" in confirm
    assert get_job(pg_db, job.id).status is JobStatus.FAILED  # type: ignore[union-attr]  # a GET changed nothing
    assert client.get(f"/act/retry?job={job.id}").status_code == 405  # no GET acts
    assert client.post("/act/retry", data={"job": str(job.id)}).status_code == 403  # no CSRF token
    assert client.post("/act/retry", data={"job": str(job.id), CSRF_FIELD: "forged"}).status_code == 403
    assert drain(queue) == []
    done = client.post("/act/retry", data={"job": str(job.id), CSRF_FIELD: guard.csrf})
    assert done.status_code == 200 and "retried 1 job(s)" in done.get_data(as_text=True)
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.PENDING and row.attempts == 0
    [message] = drain(queue)
    assert json.loads(message["Body"])["jobId"] == str(job.id)


def test_a_post_from_another_origin_is_refused(logged_in: tuple[FlaskClient, Guard], pg_db: DB) -> None:
    client, guard = logged_in
    job = insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5)
    response = client.post(
        "/act/retry", data={"job": str(job.id), CSRF_FIELD: guard.csrf}, headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 403
    assert get_job(pg_db, job.id).status is JobStatus.FAILED  # type: ignore[union-attr]


def test_a_post_without_origin_needs_a_same_origin_referer(logged_in: tuple[FlaskClient, Guard], pg_db: DB) -> None:
    """With the session cookie and a confirmation page's CSRF token, a client that sends neither Origin nor
    a Referer of this console's pages (not a browser on the console's page) changes nothing."""
    client, guard = logged_in
    job = insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5)
    form = {"job": str(job.id), CSRF_FIELD: guard.csrf}
    bare = client.post("/act/retry", data=form, environ_overrides={"HTTP_ORIGIN": None})
    assert bare.status_code == 403 and "own page" in bare.get_data(as_text=True)
    elsewhere = client.post(
        "/act/retry", data=form, environ_overrides={"HTTP_ORIGIN": None}, headers={"Referer": "http://evil.example/"}
    )
    assert elsewhere.status_code == 403
    assert get_job(pg_db, job.id).status is JobStatus.FAILED  # type: ignore[union-attr]
    own_page = f"http://127.0.0.1:{guard.port}/confirm/retry?job={job.id}"
    done = client.post("/act/retry", data=form, environ_overrides={"HTTP_ORIGIN": None}, headers={"Referer": own_page})
    assert done.status_code == 200
    assert get_job(pg_db, job.id).status is JobStatus.PENDING  # type: ignore[union-attr]


def test_retry_refuses_what_the_cli_refuses(logged_in: tuple[FlaskClient, Guard], pg_db: DB, queue: Queue) -> None:
    client, guard = logged_in
    done = insert_job(pg_db, status=JobStatus.COMPLETED)
    page = client.post("/act/retry", data={"job": str(done.id), CSRF_FIELD: guard.csrf}).get_data(as_text=True)
    assert "retried 0 job(s); refused 1" in page and "it is completed (use --force to run it again)" in page
    assert drain(queue) == []


def test_cancel_by_filter_says_how_many_then_cancels_them(logged_in: tuple[FlaskClient, Guard], pg_db: DB) -> None:
    client, guard = logged_in
    waiting = [insert_job(pg_db, type="count-calls") for _ in range(3)]
    other = insert_job(pg_db, type="test-echo")
    confirm = client.get("/confirm/cancel?status=pending&type=count-calls").get_data(as_text=True)
    assert "Cancel 3 job(s)" in confirm
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', confirm))
    assert fields == {CSRF_FIELD: guard.csrf, "status": "pending", "type": "count-calls"}
    page = client.post("/act/cancel", data=fields).get_data(as_text=True)
    assert "cancelled 3 job(s)" in page
    assert all(get_job(pg_db, j.id).status is JobStatus.CANCELLED for j in waiting)  # type: ignore[union-attr]
    assert get_job(pg_db, other.id).status is JobStatus.PENDING  # type: ignore[union-attr]


def test_an_action_on_every_job_is_not_offered(logged_in: tuple[FlaskClient, Guard], pg_db: DB) -> None:
    client, guard = logged_in
    insert_job(pg_db)
    assert client.get("/confirm/cancel").status_code == 400
    response = client.post("/act/cancel", data={CSRF_FIELD: guard.csrf})
    assert response.status_code == 400 and "no jobs chosen" in response.get_data(as_text=True)


def _dead_letter(queue: Queue, dlq: Queue, body: str, kind: str | None) -> None:
    attributes = (
        {
            DEAD_LETTER_KIND: {"DataType": "String", "StringValue": kind},
            DEAD_LETTER_REASON: {"DataType": "String", "StringValue": f"{kind} reason"},
        }
        if kind
        else {}
    )
    queue.client.send_message(QueueUrl=dlq.url, MessageBody=body, MessageAttributes=attributes)


def test_dead_letters_are_grouped_by_kind_and_redriven_one_kind_at_a_time(
    logged_in: tuple[FlaskClient, Guard], pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    client, guard = logged_in
    failed = insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5, error="boom")
    _dead_letter(queue, dlq, json.dumps({"jobId": str(failed.id), "type": "test-echo"}), DeadLetterKind.FAILED)
    _dead_letter(queue, dlq, "not json at all", DeadLetterKind.MALFORMED)
    page = client.get("/dead-letters").get_data(as_text=True)
    kinds = dict(re.findall(r'data-kind="([^"]+)">\s*<h3>[^<]*<span class="count">(\d+)</span>', page))
    assert kinds == {"failed": "1", "malformed": "1"}
    assert "not json at all" in page  # peek shows the body
    assert visible(dlq.client, dlq.url) == 2  # a look put them back, visible
    confirm = client.get("/confirm/redrive?pool=default&kind=failed").get_data(as_text=True)
    assert "Move the dead letters of kind failed in pool default" in confirm and "1 seen" in confirm
    result = client.post("/act/redrive", data={"pool": "default", "kind": "failed", CSRF_FIELD: guard.csrf})
    assert "moved 1 dead letter(s) of kind failed" in result.get_data(as_text=True)
    [moved] = drain(queue)
    assert json.loads(moved["Body"])["jobId"] == str(failed.id)
    assert get_job(pg_db, failed.id).status is JobStatus.PENDING  # type: ignore[union-attr]
    [left] = drain(dlq)
    assert left["Body"] == "not json at all"  # the other kind stays, untouched
    assert client.get("/confirm/redrive?pool=default&kind=nope").status_code == 400


def test_read_only_hides_the_actions_and_refuses_them(target: Target, pg_db: DB, queue: Queue) -> None:
    client, guard = client_for(target, read_only=True)
    job = insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5)
    detail = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "read-only" in detail and "/confirm/" not in detail
    assert "/confirm/" not in client.get("/jobs?status=failed").get_data(as_text=True)
    assert client.get(f"/confirm/retry?job={job.id}").status_code == 403
    assert client.post("/act/retry", data={"job": str(job.id), CSRF_FIELD: guard.csrf}).status_code == 403
    assert get_job(pg_db, job.id).status is JobStatus.FAILED  # type: ignore[union-attr]
    assert drain(queue) == []


def test_no_page_shows_the_database_url_or_its_password(
    pg_url: str, pg_db: DB, queue: Queue, dlq: Queue, closing: Closing
) -> None:
    """The test server trusts any password, so a URL with one connects: the pages must show neither."""
    secret = "s3cret-Passw0rd"
    with_password = pg_url.replace("://postgres@", f"://postgres:{secret}@")
    assert secret in with_password
    client, _ = client_for(closing(flag_target(with_password, queue.url, dlq.url)))
    leaked = f"connect to postgresql://app:{secret}@db.internal/prod failed"  # a handler's error, as it raised
    job = insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5, error=leaked)
    for path in [*PAGES, f"/jobs/{job.id}", "/jobs?status=bogus"]:
        text = client.get(path).get_data(as_text=True)
        assert secret not in text and with_password not in text, path
        assert pg_url.rsplit("/", 1)[-1] not in text, path  # not even the console's own database's name


def test_schedules_show_their_next_fire_times(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "JOBSTACK_OVERRIDES",
        json.dumps({"dev": {"schedules": {"nightly": {"cron": "0 3 * * ? *", "type": "test-echo"}}}}),
    )
    page = client.get("/schedules").get_data(as_text=True)
    assert "nightly" in page and "cron(0 3 * * ? *)" in page
    assert re.search(r"\d{4}-\d\d-\d\dT03:00:00", page)


def test_pools_and_routes_show_queue_names_and_types(pg_url: str, sqs: object, pg_db: DB, closing: Closing) -> None:
    target, video, _ = _two_pools(sqs, pg_url, closing)
    client, _ = client_for(target)
    page = client.get("/pools").get_data(as_text=True)
    assert video.url.rsplit("/", 1)[-1] in page and "<td>count-calls</td><td>video</td>" in page
    assert "every type not routed elsewhere" in page


def test_the_console_refuses_a_database_behind_the_schema(tmp_path: object, queue: Queue, closing: Closing) -> None:
    from pathlib import Path

    from cli.console.command import start
    from cli.errors import CliError

    empty = Path(str(tmp_path)) / "empty.sqlite3"
    with pytest.raises(CliError, match=r"the database is at migration none, not \d+: run `jobstack migrate`"):
        start(closing(flag_target(f"sqlite:///{empty}", queue.url)), port=0)


def test_a_callbacks_detail_shows_its_group_and_the_list_filters_by_it(
    client: FlaskClient, pg_db: DB, queue: Queue, seen: Seen
) -> None:
    group = publish_group(
        pg_db, [JobRequest("wf-member", {"n": n}) for n in range(3)], then=JobRequest("wf-callback", {}), queue=queue
    )
    publish_group(pg_db, [JobRequest("wf-member", {"n": 9})], queue=queue)  # another group: not listed
    assert group.then is not None
    page = client.get(f"/jobs/{group.then.id}").get_data(as_text=True)
    table = page[page.index('id="waits-for"') :].split("</table>", 1)[0]
    assert re.findall(r'href="/jobs/([0-9a-f-]{36})"', table) == [str(j.id) for j in group.jobs]
    assert f'href="/jobs?group={group.id}"' in page and "3 job(s)" in page
    member = client.get(f"/jobs/{group.jobs[0].id}").get_data(as_text=True)
    assert 'id="waited-by"' in member and str(group.then.id) in member
    listed = client.get(f"/jobs?group={group.id}").get_data(as_text=True)
    shown = set(re.findall(r'href="/jobs/([0-9a-f-]{36})"', listed))
    assert shown == {str(j.id) for j in [*group.jobs, group.then]}
    assert client.get("/jobs?group=nope").status_code == 400


def test_a_console_with_only_a_database_cancels_what_needs_no_queue_and_refuses_the_rest_first(
    pg_url: str, pg_db: DB, queue: Queue, seen: Seen, closing: Callable[[Target], Target]
) -> None:
    """The console's cancel is `jobstack cancel`'s (cli/cancelling.py): with no queue, a pending job is cancelled,
    and a job others wait for is refused in one line before anything is written (it was cancelled, then the
    send of its released callback failed with a server error)."""
    client, guard = client_for(closing(flag_target(pg_url)))
    plain = insert_job(pg_db, type="test-echo")
    page = client.post("/act/cancel", data={CSRF_FIELD: guard.csrf, "id": str(plain.id)}).get_data(as_text=True)
    assert "cancelled 1 job(s)" in page
    group = publish_group(
        pg_db, [JobRequest("wf-member", {"n": 1})], then=JobRequest("wf-callback", {}), queue=queue,
        on_failure="continue",
    )  # fmt: skip
    member = group.jobs[0]
    response = client.post("/act/cancel", data={CSRF_FIELD: guard.csrf, "id": str(member.id)})
    assert response.status_code == 400
    assert f"job {member.id} has jobs waiting for it" in response.get_data(as_text=True)
    assert get_job(pg_db, member.id).status is JobStatus.PENDING  # type: ignore[union-attr]


def test_the_job_list_shows_when_a_scheduled_job_runs(client: FlaskClient, pg_db: DB) -> None:
    at = (utcnow() + timedelta(hours=3)).replace(microsecond=0)
    scheduled = insert_job(pg_db, run_at=at)
    plain = insert_job(pg_db)
    page = client.get("/jobs").get_data(as_text=True)
    rows = {
        m.group(1): m.group(2) for m in re.finditer(r'data-job="([^"]+)".*?<td class="run-at">([^<]*)<', page, re.S)
    }
    assert rows == {str(scheduled.id): f"{at:%Y-%m-%d %H:%M:%S}", str(plain.id): "-"}


def test_the_workflow_page_needs_the_token_and_says_what_is_wrong_with_an_id(target: Target, pg_db: DB) -> None:
    anonymous, _ = client_for(target, log_in=False)
    assert anonymous.get(f"/workflows/{UUID(int=7)}").status_code == 403
    client, _ = client_for(target)
    missing = client.get(f"/workflows/{UUID(int=7)}")
    assert missing.status_code == 404 and f"no group or chain {UUID(int=7)}" in missing.get_data(as_text=True)
    bad = client.get("/workflows/not-an-id")
    assert bad.status_code == 400 and "is not a group or chain id" in bad.get_data(as_text=True)


def test_starting_a_job_needs_the_forms_csrf_token_and_writes_nothing_without_it(target: Target, pg_db: DB) -> None:
    client, guard = client_for(target)
    base = {"type": "test-echo", "payload": '{"n": 1}'}
    refused = client.post("/act/enqueue", data=base, headers={"Origin": "http://127.0.0.1:8787"})
    assert refused.status_code == 403
    with pg_db.begin() as conn:
        assert conn.execute(jobs_table.select()).first() is None
    done = client.post(
        "/act/enqueue", data=base | {CSRF_FIELD: guard.csrf}, headers={"Origin": "http://127.0.0.1:8787"}
    )
    assert done.status_code == 200 and "published test-echo job" in done.get_data(as_text=True)


class _Invoice(BaseModel):
    customer_id: int
    note: str = ""


def test_a_field_that_cannot_be_its_kind_or_a_payload_the_schema_refuses_writes_nothing(
    target: Target, pg_db: DB
) -> None:
    """The fields form, refused twice in one line each (the field's kind, then the schema), the form coming back
    as it was typed; then accepted, the payload typed as JSON reads it."""
    client, guard = client_for(target)
    headers = {"Origin": "http://127.0.0.1:8787"}
    register_job_type("console-invoice", _Invoice)
    try:
        shown = client.get("/enqueue?type=console-invoice").get_data(as_text=True)
        assert 'id="field-customer_id"' in shown and 'id="payload"' not in shown
        base = {CSRF_FIELD: guard.csrf, "type": "console-invoice", "mode": "fields", "field:note": "rush"}
        not_a_number = client.post("/act/enqueue", data=base | {"field:customer_id": "47x"}, headers=headers)
        page = not_a_number.get_data(as_text=True)
        assert not_a_number.status_code == 400 and "customer_id: &#39;47x&#39; is not a whole number" in page
        assert 'value="47x"' in page and 'value="rush"' in page  # as it was typed
        missing = client.post("/act/enqueue", data=base | {"field:customer_id": ""}, headers=headers)
        assert missing.status_code == 400 and "customer_id: Field required" in missing.get_data(as_text=True)
        with pg_db.begin() as conn:
            assert conn.execute(jobs_table.select()).first() is None
        done = client.post("/act/enqueue", data=base | {"field:customer_id": "4711"}, headers=headers)
        assert done.status_code == 200
        [job] = list_jobs(pg_db)
        assert job.payload == {"customer_id": 4711, "note": "rush"}
    finally:
        unregister_job_type("console-invoice")


def test_a_type_without_properties_is_edited_as_json(target: Target, pg_db: DB) -> None:
    client, _ = client_for(target)
    shown = client.get("/enqueue?type=test-echo").get_data(as_text=True)
    assert 'id="payload"' in shown and 'id="payload-fields"' not in shown and 'id="as-fields"' not in shown
