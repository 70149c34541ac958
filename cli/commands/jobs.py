"""`jobstack` commands on the jobs themselves: publish, show, list, retry, prune, migrate."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from cli import audit_trail, summaries
from cli.cancelling import cancel_and_send
from cli.errors import FAILED, OK, USAGE, CliError
from cli.job_options import options_of
from cli.output import Progress, emit_json, fields, table
from cli.retrying import retry_jobs
from cli.target import Target, stack_settings
from db import (
    Job,
    JobStatus,
    audit,
    count_jobs,
    get_job,
    job_id_pages,
    list_jobs,
    prune_jobs,
    publish,
    signal_now,
    utcnow,
)
from db.admin import JobFilter, job_ids_starting, unfinished_in_workflow
from db.attempts import ATTEMPT_COLUMNS, attempt_row, history
from db.audit import describe_filter, describe_ids
from db.dependencies import dependencies_of, dependents_of
from db.steps import STEP_COLUMNS, journal, step_row
from db.tenant_turns import turn_of

PRUNE_BATCH = 1000  # rows per DELETE statement


#: How far in the past an --at may be before it is taken for a typo (a clock's skew, a slow paste).
PAST_AT_TOLERANCE = timedelta(minutes=1)


def cmd_publish(args: argparse.Namespace, target: Target) -> int:
    options = options_of(args)
    at = options.get("run_at")
    if at is not None and not args.allow_past and at < datetime.now(UTC) - PAST_AT_TOLERANCE:
        raise CliError(
            f"--at {at:%Y-%m-%d %H:%M %Z} is in the past (a typo?): give a future time, or add --allow-past "
            "to run the job now",
            USAGE,
        )
    payload = _read_payload(args)
    import worker.jobs  # noqa: F401 - the worker's job modules, so a type one of them registers is known here too

    job = publish(target.db, args.type, payload, queue=target.destination, **options)
    _audit(target, "publish", 1, f"type {job.type}", f"published job {job.id} ({job.status.value})")
    if args.json:
        emit_json(job)
    else:
        when = f", runs at {job.run_at:%Y-%m-%d %H:%M:%S %Z}" if job.run_at else ""
        lane = f", priority {job.priority}" if job.priority else ""
        print(f"published {job.type} job {job.id} ({job.status.value}{when}{lane})")
    return OK


def cmd_signal(args: argparse.Namespace, target: Target) -> int:
    """Send a signal by hand (an approval nobody's app will send, a stuck wait): what a web app's
    `signal(...)` does, committed at once, the released jobs sent; audited."""
    payload = _read_payload(args, default="null")
    try:
        sent = signal_now(target.db, args.key, payload, queue=target.destination)
    except ValueError as err:
        raise CliError(str(err), USAGE) from None
    released = [str(job.id) for job in sent.released]
    line = summaries.signalled(sent)
    _audit(target, "signal", len(released), f"signal {args.key}", summaries.signal_outcome(sent)[:200])
    if args.json:
        emit_json({"key": args.key, "released": released, "kept": sent.kept})
    else:
        print(line)
    return OK


def _read_payload(args: argparse.Namespace, default: str = "{}") -> Any:
    if args.payload_file is not None:
        name = str(args.payload_file)
        try:
            text = sys.stdin.read() if name == "-" else args.payload_file.read_text()
        except OSError as err:
            raise CliError(f"cannot read --payload-file {name}: {err.strerror}", USAGE) from None
        where = f"--payload-file {name}"
    else:
        text, where = args.payload if args.payload is not None else default, "--payload"
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(f"{where} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}", USAGE) from None


def cmd_show(args: argparse.Namespace, target: Target) -> int:
    """Every field, then the job's place in a workflow: the jobs it waits for and those waiting for it."""
    job = get_job(target.db, _job_named(target, args.id))
    if job is None:
        raise CliError(f"no job {args.id}")
    waits_for, waited_by = dependencies_of(target.db, job.id), dependents_of(target.db, job.id)
    steps, attempts = journal(target.db, job.id), history(target.db, job)
    if args.json:
        emit_json(
            {**_plain_job(job), "waits_for": waits_for, "waited_for_by": waited_by, "steps": steps, "history": attempts}
        )
        return OK
    fields([(f, getattr(job, f)) for f in job.__dataclass_fields__])
    if job.status is JobStatus.WAITING and job.wait_key:
        print("\n" + _waits_for(job))
    if attempts:
        print(f"\nattempts ({len(attempts)}), each as it ended:")
        table([attempt_row(a) for a in attempts], list(ATTEMPT_COLUMNS))
    if steps:
        print(f"\nsteps ({len(steps)}), completed, kept by a retry unless --from-scratch:")
        table([step_row(step) for step in steps], list(STEP_COLUMNS))
    for title, related in (("waits for", waits_for), ("waited for by", waited_by)):
        if related:
            print(f"\n{title} ({len(related)}):")
            table(
                [(d.job_id, d.type, d.status, d.error) for d in related[:SHOWN_RELATED]],
                ["id", "type", "status", "error"],
            )
            if len(related) > SHOWN_RELATED:
                print(f"… and {len(related) - SHOWN_RELATED} more: jobstack list --group {job.workflow_id}")
    return OK


def _job_named(target: Target, given: str) -> UUID:
    """A whole id, or the start of one (a table cut on a narrow terminal shows that much) naming one job."""
    try:
        return UUID(given)
    except ValueError:
        pass
    try:
        found = job_ids_starting(target.db, given)
    except ValueError as err:
        raise CliError(str(err), USAGE) from None
    if not found:
        raise CliError(f"no job's id starts with {given!r}")
    if len(found) > 1:
        raise CliError(f"more than one job's id starts with {given!r}: give more of it", USAGE)
    return found[0]


#: A group's callback lists its members; `jobstack show` prints this many, `jobstack list --group` pages the rest.
SHOWN_RELATED = 20


def _plain_job(job: Job) -> dict[str, Any]:
    return {f: getattr(job, f) for f in job.__dataclass_fields__}


def cmd_list(args: argparse.Namespace, target: Target) -> int:
    jobs = list_jobs(
        target.db,
        status=args.status,
        type=args.type,
        since=args.since,
        limit=args.limit,
        workflow_id=args.group,
        payload=args.payload,
    )
    if args.json:
        emit_json(jobs)
    else:
        rows = [(j.id, j.type, j.status, f"{j.attempts}/{j.max_attempts}", j.created_at, j.error) for j in jobs]
        table(rows, ["id", "type", "status", "attempts", "created", "error"])
    return OK


def cmd_retry(args: argparse.Namespace, target: Target) -> int:
    """Fresh attempts and a new message for each job (cli/retrying.py), then a summary."""
    if bool(args.ids) == bool(args.status):
        raise CliError("give job ids, or --status failed|pending (with optional --type/--since), not both", USAGE)
    db = target.db
    if args.status:
        total = count_jobs(db, status=args.status, type=args.type, since=args.since)
        pages: Iterable[list[UUID]] = job_id_pages(db, status=args.status, type=args.type, since=args.since)
    else:
        total, pages = len(args.ids), [list(args.ids)]
    progress = Progress(total, "retrying")
    report = retry_jobs(
        db, target.destination, pages, force=args.force, from_scratch=args.from_scratch, progress=progress.advance
    )
    progress.close()
    asked = describe_ids([str(i) for i in args.ids]) if args.ids else _filter(args)
    _audit(target, "retry", len(report.retried), asked, summaries.retried(report)[0])
    if args.json:
        emit_json(
            {
                "retried": report.retried,
                "refused": [{"id": i, "status": s, "why": w} for i, s, w in report.refused],
                "missing": report.missing,
                "unsent": [{"id": i, "reason": r} for i, r in report.unsent.items()],
            }
        )
    else:
        summary, details = summaries.retried(report)
        print(summary)
        for line in details:
            print(line, file=sys.stderr)
    return OK if report.clean else FAILED


def cmd_migrate(args: argparse.Namespace, target: Target) -> int:
    from db.migrate import current, upgrade

    upgrade(target.db)
    revision = current(target.db)
    print(json.dumps({"revision": revision}) if args.json else f"{target.db.url}: at revision {revision}")
    return OK


def cmd_prune(args: argparse.Namespace, target: Target) -> int:
    """Bounded DELETEs (PRUNE_BATCH rows each) until nothing is left, so no lock is held for long."""
    settings = stack_settings(args.env or "dev")
    retention = {
        JobStatus.COMPLETED: timedelta(days=settings.completed_retention_days),
        JobStatus.FAILED: timedelta(days=settings.failed_retention_days),
        JobStatus.CANCELLED: timedelta(days=settings.failed_retention_days),
    }
    now = utcnow()
    counts: dict[str, int] = {}
    for status, keep in retention.items():
        if args.status and status.value != args.status:
            continue
        if args.older_than is not None:
            age = args.older_than  # an operator's own age: 0d means every such job, now
        elif not keep:
            continue  # retention 0 in the settings: kept forever
        else:
            age = keep
        total = 0
        # The count first (one query, served by the status index), so the bar knows its end.
        progress = (
            None
            if args.dry_run
            else Progress(prune_jobs(target.db, status, now - age, dry_run=True), f"pruning {status.value}")
        )
        while True:
            n = prune_jobs(target.db, status, now - age, limit=PRUNE_BATCH, dry_run=args.dry_run)
            total += n
            if progress is not None:
                progress.advance(n)
            if args.dry_run or n < PRUNE_BATCH:
                break
        if progress is not None:
            progress.close()
        counts[status.value] = total
    if not args.dry_run:
        pruned = ", ".join(f"{n} {status}" for status, n in counts.items()) or "nothing"
        age = f"older than {args.older_than}" if args.older_than is not None else "past the stack's retention"
        _audit(
            target, "prune", sum(counts.values()), f"status={args.status or 'any finished'} {age}", f"deleted {pruned}"
        )
    if args.json:
        emit_json({"dry_run": args.dry_run, **counts})
    else:
        verb = "would delete" if args.dry_run else "deleted"
        print(", ".join(f"{verb} {n} {status} job(s)" for status, n in counts.items()) or "nothing to prune")
    return OK


def cmd_cancel(args: argparse.Namespace, target: Target) -> int:
    """Cancel by id, or every job of a status (and type): waiting ones never run, running ones are asked to
    stop, completed ones are refused with one line each."""
    if sum(map(bool, (args.ids, args.status, args.group))) != 1:
        raise CliError(
            "give job ids, --status pending|failed|scheduled|waiting (with optional --type), or --group ID", USAGE
        )
    db = target.db
    pages: Iterable[list[UUID]] = [list(args.ids)]
    if args.status:
        pages = job_id_pages(db, status=args.status, type=args.type)
    elif args.group:  # what has not finished: the rest is history
        pages = [unfinished_in_workflow(db, args.group)]
    report = cancel_and_send(db, target, pages)
    cancelled, asked, refused, missing = report.cancelled, report.asked_to_stop, report.refused, report.missing
    if args.ids:
        selection = describe_ids([str(i) for i in args.ids])
    else:
        selection = _filter(args) if args.status else f"unfinished jobs of group {args.group}"
    _audit(target, "cancel", len(cancelled) + len(asked), selection, summaries.cancelled(report)[0])
    if args.json:
        emit_json({"cancelled": cancelled, "asked_to_stop": asked, "refused": refused, "missing": missing})
    else:
        summary, details = summaries.cancelled(report)
        if cancelled or asked or not (refused or missing):  # a lone refusal is said by its own line
            print(summary)
        for line in details:
            print(line, file=sys.stderr)
    return OK if not refused and not missing else FAILED


def cmd_audit(args: argparse.Namespace, target: Target) -> int:
    entries = audit.recent(target.db, limit=args.limit, action=args.action)
    if args.json:
        emit_json(entries)
    else:
        rows = [(e.at, e.actor, e.via, e.action, e.jobs, e.selection, e.outcome) for e in entries]
        table(rows, ["at", "who", "via", "action", "jobs", "asked", "outcome"])
    return OK


def _filter(args: argparse.Namespace) -> str:
    """The --status/--type/--since an action was given, as the audit trail words a filter."""
    since = getattr(args, "since", None)  # cancel has no --since
    return describe_filter(JobFilter(status=JobStatus(args.status), type=args.type, created_from=since))


def _audit(target: Target, action: str, jobs: int, selection: str, outcome: str) -> None:
    audit_trail.record(target, audit.Action("cli", action, jobs, selection, outcome))


def _waits_for(job: Job) -> str:
    """What a waiting job waits for: its tenant's turn (db/tenant_turns.py), or a signal until its timeout."""
    since = f"{job.updated_at:%Y-%m-%d %H:%M:%S %Z}"
    turn = turn_of(job.wait_key or "")
    if turn is not None:
        return (
            f"waits for its turn since {since}: tenant {turn.tenant!r} has every slot of its limit {turn.limit!r} "
            "taken; released, oldest first, as its running jobs end"
        )
    until = f"{job.run_at:%Y-%m-%d %H:%M:%S %Z}" if job.run_at else "no timeout"
    return f"waits for signal {job.wait_key!r} since {since}, until {until} (then it resumes timed out)"
