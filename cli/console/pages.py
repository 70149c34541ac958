"""The console's pages, which URL shows what: the overview, the job list and a job's detail, dead letters,
schedules, tenants and pools. Read only: what changes anything is cli/console/acting.py's. Sources are read per
request; nothing is cached between them, so a refresh shows the database as it is."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from flask import Blueprint, abort, render_template, request
from sqlalchemy.exc import DatabaseError

from cli.console.charts import throughput_svg
from cli.console.context import BadInput, console, uuid_of
from cli.console.filters import filter_from
from cli.console.graphs import workflow_svg
from cli.dead_letter_kinds import NEVER_SUCCEED
from db import Job, JobStatus, audit, get_job
from db.admin import Cursor, page_jobs
from db.attempts import history
from db.dependencies import dependencies_of, dependents_of
from db.readings import COUNT_CAP, STATES, TIMING_SAMPLE, TYPE_SAMPLE, job_counts, throughput, timings, workflow_graph
from db.steps import STEP_COLUMNS, journal, step_row
from db.tenant_turns import parked_count
from db.tenants import tenant_rows
from db.trace_context import trace_id_of
from db.waits import waiting_by_prefix

pages = Blueprint("pages", __name__)
PAGE_SIZE = 50
#: A payload is shown up to this many characters of its pretty-printed JSON (`jobstack show --json` has all).
PAYLOAD_SHOWN = 64 * 1024
#: A group's callback waits for up to 10,000 members: the detail lists this many, the group's list the rest.
RELATED_SHOWN = 50
#: The tenants page's rows by default, and at most (`?limit=`).
TENANT_ROWS, MAX_TENANT_ROWS = 50, 500
TENANT_WAIT_WINDOW = timedelta(hours=1)
WINDOWS = {"hour": (timedelta(hours=1), timedelta(minutes=1), "minute"),
           "day": (timedelta(days=1), timedelta(minutes=15), "15 minutes")}  # fmt: skip


# -- overview ----------------------------------------------------------------------------------------


def overview_context() -> dict[str, Any]:
    window_name = request.args.get("window", "hour")
    if window_name not in WINDOWS:
        raise BadInput(f"window {window_name[:20]!r} is not one of: {', '.join(WINDOWS)}")
    window, bucket, per = WINDOWS[window_name]
    buckets = throughput(console().sources.db, window=window, bucket=bucket)
    return {
        "pools": [console().sources.pool_view(p) for p in console().sources.pools()],
        "counts": job_counts(console().sources.db),
        "cap": COUNT_CAP,
        "sample": TYPE_SAMPLE,
        "states": STATES,
        "chart": throughput_svg(buckets, per=per),
        "totals": {
            "completed": sum(b.completed for b in buckets),
            "failed": sum(b.failed for b in buckets),
            "dead": sum(b.dead for b in buckets),
        },
        "window_name": window_name,
        "windows": list(WINDOWS),
        "per": per,
        "timings": timings(console().sources.db, window=window),
        "signals": waiting_by_prefix(console().sources.db),
        "turns": parked_count(console().sources.db),
    }


@pages.get("/")
def overview() -> str:
    return render_template("overview.html", **overview_context(), page="overview")


@pages.get("/live/overview")
def overview_live() -> str:
    return render_template("_overview.html", **overview_context())


# -- jobs --------------------------------------------------------------------------------------------


def list_context() -> dict[str, Any]:
    which, shown = filter_from(request.args, console().sources)
    after_text = request.args.get("after")
    try:
        after = Cursor.decode(after_text) if after_text else None
    except ValueError as err:
        raise BadInput(str(err)) from None
    page = page_jobs(console().sources.db, which, after=after, limit=PAGE_SIZE)
    next_url = f"/jobs?{urlencode({**shown, 'after': page.next.encode()})}" if page.next else None
    return {
        "jobs": page.jobs,
        "shown": shown,
        "next_url": next_url,
        "first_url": f"/jobs?{urlencode(shown)}" if after else None,
        "live_url": f"/live/jobs?{urlencode(request.args)}",
        "filter_query": urlencode(shown),
        "statuses": [s.value for s in JobStatus],
        "pools": [p.name for p in console().sources.pools()],
    }


@pages.get("/jobs")
def jobs() -> str:
    return render_template("jobs.html", **list_context(), page="jobs")


@pages.get("/live/jobs")
def jobs_live() -> str:
    return render_template("_jobs.html", **list_context())


def _job(job_id: str) -> Job:
    ident = uuid_of(job_id, "a job id")
    found = get_job(console().sources.db, ident)
    if found is None:
        abort(404, f"no job {ident}")
    return found


def _progress_context(found: Job) -> dict[str, Any]:
    steps = journal(console().sources.db, found.id)
    return {"job": found, "steps": [step_row(s) for s in steps], "step_columns": STEP_COLUMNS}


@pages.get("/jobs/<job_id>")
def job(job_id: str) -> str:
    found = _job(job_id)
    text = json.dumps(found.payload, indent=2, sort_keys=True, ensure_ascii=False)
    return render_template(
        "job.html",
        **_progress_context(found),
        payload=text[:PAYLOAD_SHOWN],
        payload_cut=max(len(text) - PAYLOAD_SHOWN, 0),
        error=found.error,
        timeline=_timeline(found),
        waits_for=dependencies_of(console().sources.db, found.id)[:RELATED_SHOWN],
        waited_by=dependents_of(console().sources.db, found.id)[:RELATED_SHOWN],
        related_shown=RELATED_SHOWN,
        result=None if found.result is None else json.dumps(found.result, indent=2, ensure_ascii=False),
        publisher_trace=trace_id_of(found.traceparent),
        replays=_replays(found.id),
        attempts=history(console().sources.db, found),
        page="jobs",
    )


def _replays(job_id: UUID) -> audit.Replays:
    try:
        return audit.replays(console().sources.db, job_id)
    except DatabaseError:  # a database without the trail (0014): no replays to show
        return audit.Replays([], None)


@pages.get("/live/jobs/<job_id>/progress")
def job_progress_live(job_id: str) -> str:
    """The job page's live part: its status, its progress and its steps, refreshed while it runs."""
    return render_template("_job_progress.html", **_progress_context(_job(job_id)))


# -- dead letters, schedules, pools ------------------------------------------------------------------


@pages.get("/dead-letters")
def dead_letters_page() -> str:
    pools = console().sources.pools()
    name = request.args.get("pool", pools[0].name)
    try:
        pool = console().sources.pool(name)
    except ValueError as err:
        raise BadInput(str(err)) from None
    letters = console().sources.dead_letters(pool)
    groups: dict[str, list[Any]] = {}
    for letter, kind in letters:
        groups.setdefault(kind, []).append(letter)
    depth = console().sources.pool_view(pool).dlq
    return render_template(
        "dead_letters.html",
        pool=pool,
        pools=[p.name for p in pools],
        groups=dict(sorted(groups.items())),
        depth=depth,
        never_succeed=NEVER_SUCCEED,
        page="dead-letters",
    )


@pages.get("/schedules")
def schedules() -> str:
    return render_template("schedules.html", schedules=console().sources.schedules(datetime.now(UTC)), page="schedules")


@pages.get("/workflows/<workflow_id>")
def workflow(workflow_id: str) -> str:
    wanted = uuid_of(workflow_id, "a group or chain id")
    graph = workflow_graph(console().sources.db, wanted)
    if not graph.nodes:
        abort(404, f"no group or chain {wanted}")
    states: dict[str, int] = {}
    for node in graph.nodes:
        states[node.status] = states.get(node.status, 0) + 1
    return render_template(
        "workflow.html", workflow_id=wanted, graph=workflow_svg(graph), total=graph.total,
        drawn=len(graph.nodes), states=sorted(states.items()), page="jobs",
    )  # fmt: skip


AUDIT_ROWS = 200


@pages.get("/audit")
def audit_page() -> str:
    try:
        entries, unavailable = audit.recent(console().sources.db, limit=AUDIT_ROWS), None
    except DatabaseError:  # a database not yet migrated to the trail (0014): said, not a 500
        entries, unavailable = [], "this database has no audit trail yet: run jobstack migrate"
    return render_template("audit.html", entries=entries, unavailable=unavailable, limit=AUDIT_ROWS, page="audit")


@pages.get("/tenants")
def tenants() -> str:
    """The tenants with the largest backlog (db/tenants.py: two bounded reads, whatever the table holds)."""
    raw = request.args.get("limit", "").strip() or str(TENANT_ROWS)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TENANT_ROWS:
        raise BadInput(f"limit must be a whole number from 1 to {MAX_TENANT_ROWS}, got {raw[:20]!r}")
    rows = tenant_rows(console().sources.db, limit=int(raw), window=TENANT_WAIT_WINDOW)
    return render_template(
        "tenants.html", rows=rows, limit=int(raw), sample=TIMING_SAMPLE, window="an hour", page="tenants"
    )


@pages.get("/pools")
def pools() -> str:
    return render_template(
        "pools.html",
        pools=[console().sources.pool_view(p) for p in console().sources.pools()],
        routes=console().sources.routes(),
        page="pools",
    )


# -- reading the query -------------------------------------------------------------------------------


_SETTLED = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


def _timeline(job: Any) -> list[tuple[str, datetime]]:
    events = [
        ("created", job.created_at),
        ("runs at", job.run_at),
        ("sent", job.sent_at),
        ("claimed (last attempt)", job.started_at),
        ("cancel requested", job.cancel_requested_at),
        (job.status.value if job.status in _SETTLED else "last change", job.completed_at or job.updated_at),
    ]
    return sorted(((name, when) for name, when in events if when is not None), key=lambda e: e[1])
