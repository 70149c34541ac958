"""The console's pages: which URL shows what, and which one changes what (POST only, after a confirmation
page that counts what the change touches). Sources are read per request; nothing is cached between them,
so a refresh shows the database as it is."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from flask import Flask, Response, abort, redirect, render_template, request
from werkzeug.exceptions import HTTPException

from cli import summaries
from cli.console import actions
from cli.console.actions import Action, Selection
from cli.console.charts import throughput_svg
from cli.console.guard import COOKIE, CSRF_FIELD, SECURITY_HEADERS, TOKEN_PARAMETER, Guard
from cli.console.sources import Sources, ago
from cli.dead_letter_kinds import ALL_KINDS, NEVER_SUCCEED
from cli.errors import CliError
from cli.parser import since_type
from db import DatabaseUnavailable, JobStatus, get_job, redact
from db.admin import Cursor, JobFilter, page_jobs
from db.dependencies import dependencies_of, dependents_of
from db.readings import COUNT_CAP, STATES, TYPE_SAMPLE, job_counts, throughput, timings
from db.trace_context import trace_id_of

HERE = Path(__file__).resolve().parent
PAGE_SIZE = 50
#: A payload is shown up to this many characters of its pretty-printed JSON (`jobs show --json` has all).
PAYLOAD_SHOWN = 64 * 1024
#: A group's callback waits for up to 10,000 members: the detail lists this many, the group's list the rest.
RELATED_SHOWN = 50
WINDOWS = {"hour": (timedelta(hours=1), timedelta(minutes=1), "minute"),
           "day": (timedelta(days=1), timedelta(minutes=15), "15 minutes")}  # fmt: skip


class BadInput(ValueError):
    """A query parameter the console cannot use: a 400 page with the one line."""


def create_app(sources: Sources, guard: Guard, *, read_only: bool = False, refresh_seconds: float = 5.0) -> Flask:
    app = Flask(__name__, template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024)

    @app.context_processor
    def _everywhere() -> dict[str, Any]:
        return {
            "target_label": sources.label,
            "read_only": read_only,
            "csrf": guard.csrf,
            "csrf_field": CSRF_FIELD,
            "refresh_ms": int(refresh_seconds * 1000),
            "ago": ago,
            "now": datetime.now(UTC),
        }

    app.jinja_env.filters["thousands"] = lambda n: f"{n:,}" if isinstance(n, int) else ("-" if n is None else n)
    app.jinja_env.filters["when"] = lambda t: f"{t:%Y-%m-%d %H:%M:%S}" if t else "-"
    app.jinja_env.filters["seconds"] = _seconds
    app.jinja_env.filters["redact"] = redact  # errors and reasons may quote a URL with its password

    @app.before_request
    def _guard() -> Response | None:
        if not guard.host_ok(request.host):
            abort(403, "this console answers to its own address only (the Host header named another)")
        given = request.args.get(TOKEN_PARAMETER)
        if given is not None:
            if not guard.token_ok(given):
                abort(403, "wrong token: open the URL `jobs console` printed")
            if request.method == "GET":  # the cookie from now on; the token leaves the address bar
                query = {k: v for k, v in request.args.items(multi=True) if k != TOKEN_PARAMETER}
                response = redirect(request.path + (f"?{urlencode(query)}" if query else ""), code=303)
                response.set_cookie(COOKIE, guard.token, httponly=True, samesite="Strict", path="/")
                return response  # type: ignore[return-value]
        elif not guard.token_ok(request.cookies.get(COOKIE)):
            abort(403, "no token: open the URL `jobs console` printed (it ends in ?token=...)")
        if request.method == "POST":
            if read_only:
                abort(403, "this console is read-only (started with --read-only)")
            if not guard.origin_ok(request.headers.get("Origin"), request.host):
                abort(403, "a form from another site cannot act here")
            if not guard.csrf_ok(request.form.get(CSRF_FIELD)):
                abort(403, "this form is stale or not the console's own: reload the page and try again")
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> tuple[str, int]:
        # A refusal says nothing about the target (not even its name) to whoever was refused.
        template = "denied.html" if err.code == 403 else "error.html"
        return render_template(template, code=err.code, message=err.description), err.code or 500

    @app.errorhandler(BadInput)
    def _bad_input(err: BadInput) -> tuple[str, int]:
        return render_template("error.html", code=400, message=redact(str(err))), 400

    @app.errorhandler(CliError)
    def _refused(err: CliError) -> tuple[str, int]:
        """An action the CLI would refuse in one line (a retry, or a cancel that must send, with no queue)."""
        return render_template("error.html", code=400, message=redact(str(err))), 400

    @app.errorhandler(DatabaseUnavailable)
    def _database_down(err: DatabaseUnavailable) -> tuple[str, int]:
        return render_template("error.html", code=503, message=redact(str(err))), 503

    # -- overview ----------------------------------------------------------------------------------

    def overview_context() -> dict[str, Any]:
        window_name = request.args.get("window", "hour")
        if window_name not in WINDOWS:
            raise BadInput(f"window {window_name[:20]!r} is not one of: {', '.join(WINDOWS)}")
        window, bucket, per = WINDOWS[window_name]
        buckets = throughput(sources.db, window=window, bucket=bucket)
        return {
            "pools": [sources.pool_view(p) for p in sources.pools()],
            "counts": job_counts(sources.db),
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
            "timings": timings(sources.db, window=window),
        }

    @app.get("/")
    def overview() -> str:
        return render_template("overview.html", **overview_context(), page="overview")

    @app.get("/live/overview")
    def overview_live() -> str:
        return render_template("_overview.html", **overview_context())

    # -- jobs --------------------------------------------------------------------------------------

    def list_context() -> dict[str, Any]:
        which, shown = _filter_from(request.args, sources)
        after_text = request.args.get("after")
        try:
            after = Cursor.decode(after_text) if after_text else None
        except ValueError as err:
            raise BadInput(str(err)) from None
        page = page_jobs(sources.db, which, after=after, limit=PAGE_SIZE)
        next_url = f"/jobs?{urlencode({**shown, 'after': page.next.encode()})}" if page.next else None
        return {
            "jobs": page.jobs,
            "shown": shown,
            "next_url": next_url,
            "first_url": f"/jobs?{urlencode(shown)}" if after else None,
            "live_url": f"/live/jobs?{urlencode(request.args)}",
            "filter_query": urlencode(shown),
            "statuses": [s.value for s in JobStatus],
            "pools": [p.name for p in sources.pools()],
        }

    @app.get("/jobs")
    def jobs() -> str:
        return render_template("jobs.html", **list_context(), page="jobs")

    @app.get("/live/jobs")
    def jobs_live() -> str:
        return render_template("_jobs.html", **list_context())

    @app.get("/jobs/<job_id>")
    def job(job_id: str) -> str:
        try:
            ident = UUID(job_id)
        except ValueError:
            raise BadInput(f"{job_id[:40]!r} is not a job id (a UUID)") from None
        found = get_job(sources.db, ident)
        if found is None:
            abort(404, f"no job {ident}")
        text = json.dumps(found.payload, indent=2, sort_keys=True, ensure_ascii=False)
        return render_template(
            "job.html",
            job=found,
            payload=text[:PAYLOAD_SHOWN],
            payload_cut=max(len(text) - PAYLOAD_SHOWN, 0),
            error=found.error,
            timeline=_timeline(found),
            waits_for=dependencies_of(sources.db, found.id)[:RELATED_SHOWN],
            waited_by=dependents_of(sources.db, found.id)[:RELATED_SHOWN],
            related_shown=RELATED_SHOWN,
            result=None if found.result is None else json.dumps(found.result, indent=2, ensure_ascii=False),
            publisher_trace=trace_id_of(found.traceparent),
            page="jobs",
        )

    # -- dead letters, schedules, pools ------------------------------------------------------------

    @app.get("/dead-letters")
    def dead_letters_page() -> str:
        pools = sources.pools()
        name = request.args.get("pool", pools[0].name)
        try:
            pool = sources.pool(name)
        except ValueError as err:
            raise BadInput(str(err)) from None
        letters = sources.dead_letters(pool)
        groups: dict[str, list[Any]] = {}
        for letter, kind in letters:
            groups.setdefault(kind, []).append(letter)
        depth = sources.pool_view(pool).dlq
        return render_template(
            "dead_letters.html",
            pool=pool,
            pools=[p.name for p in pools],
            groups=dict(sorted(groups.items())),
            depth=depth,
            never_succeed=NEVER_SUCCEED,
            page="dead-letters",
        )

    @app.get("/schedules")
    def schedules() -> str:
        return render_template("schedules.html", schedules=sources.schedules(datetime.now(UTC)), page="schedules")

    @app.get("/pools")
    def pools() -> str:
        return render_template(
            "pools.html", pools=[sources.pool_view(p) for p in sources.pools()], routes=sources.routes(), page="pools"
        )

    # -- actions: a confirmation that counts, then the POST -----------------------------------------

    @app.get("/confirm/<action>")
    def confirm(action: str) -> str:
        if read_only:
            abort(403, "this console is read-only (started with --read-only)")
        chosen = _action(action)
        fields = [(k, v) for k, v in request.args.items(multi=True) if k != TOKEN_PARAMETER]
        if chosen is Action.REDRIVE:
            pool, kind = _redrive_target(request.args, sources)
            letters = sum(1 for _, k in sources.dead_letters(pool) if k == kind)
            depth = sources.pool_view(pool).dlq
            summary = (
                f"Move the dead letters of kind {kind} in pool {pool.name} back to its queue: {letters} seen in the "
                f"first {min(depth.visible if depth else 0, 100)} read, at most {actions.REDRIVE_LIMIT} in all."
            )
            count, back = letters, f"/dead-letters?{urlencode({'pool': pool.name})}"
        else:
            count, cut = _selection(request.args, sources).count(sources)
            verb = "Retry" if chosen is Action.RETRY else "Cancel"
            summary = f"{verb} {count} job(s)" + (f" (the first {actions.ACTION_LIMIT} of more)" if cut else "") + "."
            if chosen is Action.RETRY:
                summary += " Each gets fresh attempts and a new message; a job a retry would duplicate is refused."
            else:
                summary += " Waiting jobs never run; running ones are asked to stop; finished ones are refused."
            back = _back(_selection(request.args, sources))
        return render_template(
            "confirm.html", action=chosen, summary=summary, count=count, fields=fields, back=back, page=""
        )

    @app.post("/act/<action>")
    def act(action: str) -> str:
        chosen = _action(action)
        if chosen is Action.REDRIVE:
            pool, kind = _redrive_target(request.form, sources)
            report = actions.redrive(sources, pool, kind)
            lines = [
                f"moved {report.moved_total} dead letter(s) of kind {kind} to {pool.name}'s queue; "
                f"{len(report.requeued_jobs)} job(s) given fresh attempts",
                *([f"deleted {report.superseded} whose jobs had moved on"] if report.superseded else []),
                *(f"not moved {m}: {r}" for m, r in report.failed.items()),
            ]
            back = f"/dead-letters?{urlencode({'pool': pool.name})}"
        else:
            selection = _selection(request.form, sources)
            if chosen is Action.RETRY:
                summary, details = summaries.retried(actions.retry(sources, selection))
            else:
                summary, details = summaries.cancelled(actions.cancel(sources, selection))
            lines, back = [summary, *details], _back(selection)
        return render_template("result.html", lines=[redact(line) for line in lines], back=back, page="")

    return app


def _action(name: str) -> Action:
    try:
        return Action(name)
    except ValueError:
        abort(404, f"no action {name[:20]!r}")


_FILTER_FIELDS = ("status", "type", "pool", "from", "to", "key", "id")


def _filter_from(args: Any, sources: Sources) -> tuple[JobFilter, dict[str, str]]:
    """The list's filter from query parameters, and the parameters that made it (for links)."""
    shown = {
        k: args[k].strip()
        for k in ("status", "type", "pool", "from", "to", "key", "id", "group")
        if args.get(k, "").strip()
    }
    status = shown.get("status")
    if status is not None and status not in {s.value for s in JobStatus}:
        raise BadInput(f"status {status[:20]!r} is not one of: {', '.join(s.value for s in JobStatus)}")
    pool_filter = JobFilter()
    if "pool" in shown:
        try:
            pool_filter = sources.pool(shown["pool"]).filter
        except ValueError as err:
            raise BadInput(str(err)) from None
    try:
        which = JobFilter(
            status=JobStatus(status) if status else None,
            type=shown.get("type"),
            only_types=pool_filter.only_types,
            except_types=pool_filter.except_types,
            lane=pool_filter.lane,
            lanes=pool_filter.lanes,
            created_from=_time(shown.get("from"), "from"),
            created_to=_time(shown.get("to"), "to"),
            idempotency_key=shown.get("key"),
            id_prefix=shown.get("id"),
            workflow_id=UUID(shown["group"]) if "group" in shown else None,
        )
        which.clauses()  # an id prefix that is not hex is said now, as a 400
    except ValueError as err:
        raise BadInput(str(err)) from None
    return which, shown


def _time(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        return since_type(text)
    except argparse.ArgumentTypeError as err:
        raise BadInput(f"{name}: {err}") from None


def _selection(args: Any, sources: Sources) -> Selection:
    ids = args.getlist("job")
    if ids:
        try:
            return Selection(ids=tuple(UUID(i) for i in ids))
        except ValueError:
            raise BadInput("a job id in the form is not a UUID") from None
    which, shown = _filter_from(args, sources)
    if not shown:
        raise BadInput("no jobs chosen: filter the list first (an action on every job is not offered)")
    return Selection(which=which)


def _back(selection: Selection) -> str:
    if len(selection.ids) == 1:
        return f"/jobs/{selection.ids[0]}"
    return "/jobs"


def _redrive_target(args: Any, sources: Sources) -> tuple[Any, str]:
    kind = args.get("kind", "")
    if kind not in ALL_KINDS:
        raise BadInput(f"kind {kind[:30]!r} is not one of: {', '.join(ALL_KINDS)}")
    try:
        return sources.pool(args.get("pool", "")), kind
    except ValueError as err:
        raise BadInput(str(err)) from None


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


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"
