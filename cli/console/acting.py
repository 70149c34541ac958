"""What the console changes: retry, cancel and redrive, each in two steps, a confirmation page that counts
what the change touches (GET), then the change itself (POST, which the guard checks for origin and CSRF).
The changes themselves are cli/console/actions.py's, through the CLI's own code."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from flask import Blueprint, abort, render_template, request

from cli import summaries
from cli.console import actions
from cli.console.actions import Action, Selection
from cli.console.context import BadInput, console
from cli.console.filters import filter_from
from cli.console.guard import TOKEN_PARAMETER
from cli.console.sources import Sources
from cli.dead_letter_kinds import ALL_KINDS
from db import redact
from db.waits import check_key, waiting_on

acting = Blueprint("acting", __name__)


@acting.get("/confirm/<action>")
def confirm(action: str) -> str:
    if console().read_only:
        abort(403, "this console is read-only (started with --read-only)")
    chosen = _action(action)
    fields = [(k, v) for k, v in request.args.items(multi=True) if k != TOKEN_PARAMETER]
    if chosen in (Action.PAUSE, Action.RESUME):
        pool = _pool(request.args, console().sources)
        if chosen is Action.PAUSE:
            summary = (
                f"Pause the worker of pool {pool.name}: its event source mapping is disabled, no job of the pool "
                "starts, and its messages wait in the queue (within its retention) until it is resumed."
            )
        else:
            summary = f"Resume the worker of pool {pool.name}: its event source mapping is enabled again."
        count, back = 0, "/pools"
    elif chosen is Action.SIGNAL:
        key = _signal_key(request.args)
        count = waiting_on(console().sources.db, key)
        summary = (
            f"Signal {key}: {count} waiting job(s) resume with the payload below (JSON; null for none). With none "
            "waiting, it is kept for the first job that waits on the key."
        )
        job = request.args.get("job")
        back = f"/jobs/{job}" if job else "/jobs?status=waiting"
    elif chosen is Action.REDRIVE:
        pool, kind = _redrive_target(request.args, console().sources)
        letters = sum(1 for _, k in console().sources.dead_letters(pool) if k == kind)
        depth = console().sources.pool_view(pool).dlq
        summary = (
            f"Move the dead letters of kind {kind} in pool {pool.name} back to its queue: {letters} seen in the "
            f"first {min(depth.visible if depth else 0, 100)} read, at most {actions.REDRIVE_LIMIT} in all."
        )
        count, back = letters, f"/dead-letters?{urlencode({'pool': pool.name})}"
    else:
        count, cut = _selection(request.args, console().sources).count(console().sources)
        verb = "Retry" if chosen is Action.RETRY else "Cancel"
        summary = f"{verb} {count} job(s)" + (f" (the first {actions.ACTION_LIMIT} of more)" if cut else "") + "."
        if chosen is Action.RETRY:
            summary += " Each gets fresh attempts and a new message; a job a retry would duplicate is refused."
        else:
            summary += " Waiting jobs never run; running ones are asked to stop; finished ones are refused."
        back = _back(_selection(request.args, console().sources))
    return render_template(
        "confirm.html", action=chosen, summary=summary, count=count, fields=fields, back=back, page=""
    )


@acting.post("/act/<action>")
def act(action: str) -> str:
    chosen = _action(action)
    if chosen in (Action.PAUSE, Action.RESUME):
        pool = _pool(request.form, console().sources)
        state = actions.set_worker(console().sources, pool, enabled=chosen is Action.RESUME)
        verb = "resumed" if chosen is Action.RESUME else "paused"
        lines, back = [f"worker of pool {pool.name} {verb}: its event source mapping is {state}"], "/pools"
    elif chosen is Action.SIGNAL:
        key = _signal_key(request.form)
        try:
            payload = json.loads(request.form.get("payload") or "null")
        except json.JSONDecodeError as err:
            raise BadInput(f"the payload is not JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
        lines = [summaries.signalled(actions.signal(console().sources, key, payload))]
        job = request.form.get("job")
        back = f"/jobs/{job}" if job else "/jobs?status=waiting"
    elif chosen is Action.REDRIVE:
        pool, kind = _redrive_target(request.form, console().sources)
        report = actions.redrive(console().sources, pool, kind)
        lines = [
            f"moved {report.moved_total} dead letter(s) of kind {kind} to {pool.name}'s queue; "
            f"{len(report.requeued_jobs)} job(s) given fresh attempts",
            *([f"deleted {report.superseded} whose jobs had moved on"] if report.superseded else []),
            *(f"not moved {m}: {r}" for m, r in report.failed.items()),
            *(console().sources.idle_hints() if report.moved_total else []),
        ]
        back = f"/dead-letters?{urlencode({'pool': pool.name})}"
    else:
        selection = _selection(request.form, console().sources)
        if chosen is Action.RETRY:
            retried = actions.retry(console().sources, selection)
            summary, details = summaries.retried(retried)
            details += console().sources.idle_hints() if retried.retried else []
        else:
            summary, details = summaries.cancelled(actions.cancel(console().sources, selection))
        lines, back = [summary, *details], _back(selection)
    return render_template("result.html", lines=[redact(line) for line in lines], back=back, page="")


def _action(name: str) -> Action:
    try:
        return Action(name)
    except ValueError:
        abort(404, f"no action {name[:20]!r}")


def _selection(args: Any, sources: Sources) -> Selection:
    ids = args.getlist("job")
    if ids:
        try:
            return Selection(ids=tuple(UUID(i) for i in ids))
        except ValueError:
            raise BadInput("a job id in the form is not a UUID") from None
    which, shown = filter_from(args, sources)
    if not shown:
        raise BadInput("no jobs chosen: filter the list first (an action on every job is not offered)")
    return Selection(which=which)


def _signal_key(args: Any) -> str:
    try:
        return check_key(args.get("key", ""))
    except ValueError as err:
        raise BadInput(str(err)) from None


def _back(selection: Selection) -> str:
    if len(selection.ids) == 1:
        return f"/jobs/{selection.ids[0]}"
    return "/jobs"


def _pool(args: Any, sources: Sources) -> Any:
    """The pool a pause or resume is for, which must have a deployed worker: else a 400 in one line."""
    try:
        pool = sources.pool(args.get("pool", ""))
        actions.mapping_of(sources, pool)
    except ValueError as err:
        raise BadInput(str(err)) from None
    return pool


def _redrive_target(args: Any, sources: Sources) -> tuple[Any, str]:
    kind = args.get("kind", "")
    if kind not in ALL_KINDS:
        raise BadInput(f"kind {kind[:30]!r} is not one of: {', '.join(ALL_KINDS)}")
    try:
        return sources.pool(args.get("pool", "")), kind
    except ValueError as err:
        raise BadInput(str(err)) from None
