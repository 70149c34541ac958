"""`jobstack` commands on the queues and the worker: stats, dlq, logs, pause/resume, local, cost, doctor."""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from cli import audit_trail, queue_state
from cli import dlq as dead_letters
from cli.dead_letter_kinds import SQS_REDRIVE
from cli.errors import FAILED, OK, USAGE, CliError
from cli.output import Progress, emit_json, fields, table
from cli.queue_state import queue_counts
from cli.target import Target
from db import oldest_pending, utcnow
from db.audit import Action
from db.readings import COUNT_CAP, STATES, job_counts, timings
from db.tenant_turns import parked_count
from db.tenants import tenant_counts
from db.waits import waiting_by_prefix
from stacks.pools import DEFAULT_POOL
from worker.contract import DeadLetterKind

#: The window of `jobstack stats`' queue-wait percentiles (the console's overview picks its own).
QUEUE_WAIT_WINDOW = timedelta(hours=1)


def cmd_stats(args: argparse.Namespace, target: Target) -> int:
    if args.watch is None:
        return _stats_once(args, target)
    if args.watch <= 0:
        raise CliError("--watch takes a positive number of seconds", USAGE)
    refreshes = 0
    clear = sys.stdout.isatty() and not args.json
    try:
        while args.count is None or refreshes < args.count:
            if clear:
                sys.stdout.write("\x1b[H\x1b[2J")  # home, clear: redraw in place
            if not args.json:
                print(f"every {args.watch:g} s, {utcnow():%H:%M:%S} UTC (Ctrl-C to stop)\n")
            _stats_once(args, target)
            sys.stdout.flush()
            refreshes += 1
            if args.count is None or refreshes < args.count:
                time.sleep(args.watch)
    except KeyboardInterrupt:
        pass
    return OK


def _status_counts(target: Target) -> tuple[dict[tuple[str, str], int], set[str], int]:
    """Jobs per (status, type) as db/readings.py counts them (bounded: exact up to its cap, the planner's
    estimate beyond; finished jobs over the last 24 hours), the statuses estimated, and that window in hours."""
    counts = job_counts(target.db)
    status_of = {state.name: state.status.value for state in STATES}
    merged: dict[tuple[str, str], int] = {}
    for job_type, row in counts.by_type.items():
        for state, n in row.items():
            key = (status_of[state], job_type)
            merged[key] = merged.get(key, 0) + n
    estimated = {status_of[state] for state in counts.estimated | counts.at_least}
    return merged, estimated, int(counts.window.total_seconds() // 3600)


def _stats_once(args: argparse.Namespace, target: Target) -> int:
    if getattr(args, "by_tenant", False):
        return _tenant_stats(args, target)
    counts, estimated, window_hours = _status_counts(target)
    oldest = oldest_pending(target.db)
    oldest_age = (utcnow() - oldest).total_seconds() if oldest else None
    # Each queue and mapping is read once per refresh: the default pool's appear above and in the pools' rows.
    counts_of: Callable[[str], tuple[int, int, int]] = functools.cache(lambda url: _depths(target, url))
    state_of: Callable[[str], str | None] = functools.cache(lambda pool: queue_state.worker_state(target, pool))
    # The queues when they are known: a database alone is enough for the jobs' side.
    queue = counts_of(target.queue_url) if target.has_queue else None
    dlq = counts_of(target.dlq_url) if target.has_dlq else None
    worker_state = state_of(target.pool or DEFAULT_POOL)
    # A stack with several pools and no --pool: a row per pool (the default pool's numbers stay above too).
    pools = (
        [_pool_row(target, pool, counts_of, state_of) for pool in target.pools]
        if len(target.pools) > 1 and not target.pool
        else []
    )
    waits = timings(target.db, window=QUEUE_WAIT_WINDOW)
    signals = waiting_by_prefix(target.db)
    turns = parked_count(target.db)
    data = {
        "jobs": [{"status": s, "type": t, "count": n} for (s, t), n in sorted(counts.items())],
        "estimated": sorted(estimated),  # statuses whose counts are PostgreSQL's estimates
        "finished_window_hours": window_hours,  # completed and cancelled jobs: changed within these hours
        "queue": {"visible": queue[0], "in_flight": queue[1], "delayed": queue[2]} if queue else None,
        "oldest_pending_job_seconds": oldest_age,
        "dlq_depth": dlq[0] + dlq[1] if dlq else None,
        "worker": worker_state,
        # first attempts completed in the last hour: publish (or run_at) to start, seconds (JobQueueWait's rule)
        "queue_wait": [
            {"type": w.type, "jobs": w.jobs, "p50_seconds": w.wait_p50, "p95_seconds": w.wait_p95} for w in waits
        ],
        **({"pools": pools} if pools else {}),
        # jobs waiting for a signal (ctx.wait_for_signal), by the key's prefix (up to its first ':')
        "waiting_for_signals": [{"prefix": prefix, "jobs": n} for prefix, n in signals],
        # jobs a tenant's running limit parked until a slot frees (db/tenant_turns.py)
        "waiting_for_their_turn": turns,
    }
    if args.json:
        emit_json(data)
        return OK
    table(
        [(s, t, f"≈{n}" if s in estimated else n) for (s, t), n in sorted(counts.items())], ["status", "type", "jobs"]
    )
    print(f"(completed and cancelled: the last {window_hours} h; ≈ PostgreSQL's estimate, past {COUNT_CAP:,} rows)\n")
    if waits:
        table(
            [(w.type, w.jobs, _seconds(w.wait_p50), _seconds(w.wait_p95)) for w in waits],
            ["type", "completed", "queue wait p50", "queue wait p95"],
        )
        print("(the last hour's completions: publish, or run_at, to the first attempt's start)\n")
    if signals:
        table(signals, ["waiting for signal", "jobs"])
        print("(jobs waiting for a signal, by the key up to its first ':')\n")
    if turns:
        print(f"{turns:,} job(s) wait for their tenant's turn (its limit's slots all taken; see --by-tenant)\n")
    if pools:
        table(
            [(p["pool"], p["visible"], p["in_flight"], p["delayed"], p["dlq_depth"], p["worker"]) for p in pools],
            ["pool", "queue visible", "in flight", "delayed", "DLQ depth", "worker"],
        )
        print()
    fields(
        [
            *(
                [("queue visible", queue[0]), ("queue in flight", queue[1]), ("queue delayed", queue[2])]
                if queue
                else [("queue", "not given (--queue-url, QUEUE_URL or --env)")]
            ),
            ("oldest pending job", f"{oldest_age:.0f} s" if oldest_age is not None else None),
            ("DLQ depth", data["dlq_depth"] if dlq else "not given (--dlq-url, DLQ_URL or --env)"),
            ("worker", worker_state or "unknown (pass --env to read the event source mapping)"),
        ]
    )
    return OK


def _tenant_stats(args: argparse.Namespace, target: Target) -> int:
    """`stats --by-tenant`: the tenants with the largest backlog, and what each has running and failed."""
    rows = tenant_counts(target.db, limit=args.limit)
    if args.json:
        emit_json({"tenants": rows})
        return OK
    table([(r.tenant, r.backlog, r.running, r.failed) for r in rows], ["tenant", "backlog", "running", "failed"])
    print(f"(the {args.limit} tenants with the most jobs not started yet: pending, scheduled or waiting)")
    return OK


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def _pool_row(
    target: Target,
    pool: str,
    counts_of: Callable[[str], tuple[int, int, int]],
    state_of: Callable[[str], str | None],
) -> dict[str, Any]:
    queue_url, dlq_url = target.output("QueueUrl", pool), target.output("DeadLetterQueueUrl", pool)
    visible, in_flight, delayed = counts_of(queue_url) if queue_url else (None, None, None)
    dlq = counts_of(dlq_url) if dlq_url else None
    return {
        "pool": pool,
        "visible": visible,
        "in_flight": in_flight,
        "delayed": delayed,
        "dlq_depth": dlq[0] + dlq[1] if dlq else None,
        "worker": state_of(pool),
    }


def _depths(target: Target, url: str) -> tuple[int, int, int]:
    counts = queue_counts(target.sqs, url)
    return counts.visible, counts.in_flight, counts.delayed


def cmd_routes(args: argparse.Namespace, target: Target) -> int:
    """What a web app exports to publish to every pool: the stack's Routes output, as one shell line."""
    if not target.env:
        raise CliError("routes come from a deployed stack: pass --env ENV", USAGE)
    if target.routes is None:
        raise CliError(f"{target.stack_name} has no Routes output: deploy this version of the stack first", FAILED)
    text = target.routes.to_json()
    print(text if args.json else f"export JOBSTACK_ROUTES='{text}'")
    return OK


def cmd_dlq(args: argparse.Namespace, target: Target) -> int:
    sqs = target.sqs
    if args.dlq_command == "peek":
        letters = dead_letters.receive(sqs, target.dlq_url, args.limit, hold_seconds=30)
        dead_letters.release(sqs, target.dlq_url, letters)
        db = _optional_db(target, quiet=True)
        kinds = dead_letters.kinds_of(letters, db)
        if args.json:
            emit_json(
                [
                    {
                        "message_id": m.message_id,
                        "job_id": m.job_id,
                        "type": m.job_type,
                        "body": m.body,
                        "error": m.reason,
                        "kind": kind,
                        "arrived_at": m.arrived_at,
                        "sent_at": m.sent_at,
                    }
                    for m, kind in zip(letters, kinds, strict=True)
                ]
            )
        else:
            rows = [
                (m.job_id, m.job_type, _KIND_LABELS.get(kind, kind), m.arrived_at or "-", m.reason)
                for m, kind in zip(letters, kinds, strict=True)
            ]
            table(rows, ["job id", "type", "kind", "arrived", "error"])
        return OK
    if args.dlq_command == "redrive":
        db = _optional_db(target)
        total = queue_counts(target.sqs, target.dlq_url).visible
        progress = Progress(min(total, args.limit), "redriving")
        report = dead_letters.redrive(
            sqs,
            db,
            target.dlq_url,
            target.queue_url,
            limit=args.limit,
            include=frozenset(args.include or ()),
            only=frozenset(args.kind) if args.kind else None,
            progress=progress.advance,
        )
        progress.close()
        if db is not None:
            asked = "kind " + (",".join(sorted(args.kind)) if args.kind else "every fixable kind")
            outcome = f"moved {report.moved_total}; {len(report.requeued_jobs)} job(s) given fresh attempts"
            audit_trail.record(target, Action("cli", "redrive", report.moved_total, asked, outcome))
        if args.json:
            emit_json(
                {
                    "present": report.present,
                    "moved": report.moved,
                    "skipped": report.skipped,
                    "requeued_jobs": report.requeued_jobs,
                    "superseded": report.superseded,
                    "failed": report.failed,
                }
            )
        else:
            print(
                f"{report.present} message(s) in the DLQ at the start; moved {report.moved_total} to the main queue"
                f"{_by_kind(report.moved)}; {len(report.requeued_jobs)} job(s) given fresh attempts"
            )
            if report.superseded:
                print(
                    f"deleted {report.superseded} dead letter(s) whose jobs had moved on since (retried, finished or "
                    "running): moving them would have given those jobs a second message"
                )
            if report.skipped:
                print(
                    f"left {sum(report.skipped.values())} in the DLQ that no redrive can fix{_by_kind(report.skipped)}"
                    " (--include KIND moves them anyway)"
                )
            for message_id, reason in report.failed.items():
                print(f"not moved {message_id}: {reason}", file=sys.stderr)
        return OK if not report.failed else FAILED
    # purge
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("refusing to purge without confirmation: pass --yes", USAGE)
        answer = input(f"Delete every message in {target.dlq_url}? Type 'purge' to confirm: ")
        if answer.strip() != "purge":
            print("not purged")
            return FAILED
    sqs.purge_queue(QueueUrl=target.dlq_url)
    print("purged" if not args.json else json.dumps({"purged": target.dlq_url}))
    return OK


_KIND_LABELS = {DeadLetterKind.NOT_FOUND: "no row (published without publish()?)", SQS_REDRIVE: "SQS redrive"}


def _by_kind(counts: dict[str, int]) -> str:
    """` (by kind: failed 2, sqs_redrive 1)`: kinds are the dead letters' reasons, not failures to move."""
    return " (by kind: " + ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())) + ")" if counts else ""


def _optional_db(target: Target, *, quiet: bool = False) -> Any:
    try:
        return target.db
    except CliError:
        if not quiet:
            print(
                "note: no database given; jobs are not requeued (pass --database-url to give them fresh attempts)",
                file=sys.stderr,
            )
        return None


def cmd_logs(args: argparse.Namespace, target: Target) -> int:
    group = args.log_group or target.stack_output("WorkerLogGroupName", "--log-group")
    logs = target.client("logs")
    start = int(args.since.timestamp() * 1000)
    pattern = f'"{args.job}"' if args.job else ""
    seen: set[str] = set()
    said_none = False
    try:
        while True:
            kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start, "interleaved": True}
            if pattern:
                kwargs["filterPattern"] = pattern
            for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
                for event in page.get("events", []):
                    if event["eventId"] in seen:
                        continue
                    seen.add(event["eventId"])
                    start = max(start, event["timestamp"])
                    print(json.dumps(event) if args.json else event["message"].rstrip())
            if not seen and not said_none and not args.json:  # silence would read as a broken command
                said_none = True
                print(_no_lines_why(group, args, target), file=sys.stderr)
            if not args.follow:
                return OK
            sys.stdout.flush()
            time.sleep(2)
    except KeyboardInterrupt:
        return OK


def _no_lines_why(group: str, args: argparse.Namespace, target: Target) -> str:
    since = args.since.strftime("%Y-%m-%d %H:%M:%S UTC")
    matching = f" matching job {args.job}" if args.job else ""
    why = (
        "an emulator's log group holds only what is written to it, and no Lambda runs there: `jobstack local` "
        "prints the worker's lines in its own terminal"
        if target.endpoint_url
        else "the function has not run since then, or logs at a level that hides these lines (log_level)"
    )
    return f"no log lines in {group} since {since}{matching} ({why}); --since 1d looks further back"


def cmd_pause(args: argparse.Namespace, target: Target, *, enabled: bool) -> int:
    mapping_id = args.mapping_id or target.stack_output("EventSourceMappingId", "--mapping-id")
    state = queue_state.set_worker(target, mapping_id, enabled=enabled)
    verb = "resumed" if enabled else "paused"
    action = "resume" if enabled else "pause"
    audit_trail.record(target, Action("cli", action, 0, f"mapping {mapping_id}", state))
    print(
        json.dumps({"mapping": mapping_id, "state": state})
        if args.json
        else f"worker {verb}: event source mapping {mapping_id} is {state}"
    )
    return OK
