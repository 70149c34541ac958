"""`jobs`: publish, inspect, retry and redrive jobs; pause the worker; run the whole pipeline locally.

Every command takes the connection options after its name, e.g.
`jobs publish test-echo --payload '{}' --queue-url URL`. Exit codes: 0 done, 1 failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from cli import dlq as dead_letters
from cli.errors import FAILED, OK, USAGE, CliError
from cli.output import Progress, emit_json, fields, table
from cli.target import Target, _aws_reason, stack_settings
from db import (
    ConfigError,
    DatabaseUnavailable,
    InvalidPayload,
    JobstackError,
    JobStatus,
    PayloadTooLarge,
    PublishError,
    UnknownJobType,
    get_job,
    list_jobs,
    mark_sent,
    publish,
    requeue_job,
    resend,
)
from db.engine import redact
from db.repository import count_by_status_and_type, utcnow

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# -- argument types ---------------------------------------------------------------------------------------


def since_type(value: str) -> datetime:
    """`30m`, `2h`, `7d` ago, or an ISO 8601 time (UTC if no zone)."""
    match = _DURATION.match(value.strip())
    if match:
        return utcnow() - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither a duration like 30m, 2h, 7d nor an ISO time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def uuid_type(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a job id (a UUID)") from None


def milliseconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of milliseconds") from None
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"{value} must be zero or more milliseconds")
    return number


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


# -- the parser -------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    connection = argparse.ArgumentParser(add_help=False)
    group = connection.add_argument_group("connection")
    group.add_argument("--env", choices=None, help="read URLs and the database secret from deployed JobsStack-ENV")
    group.add_argument("--database-url", help="overrides $DATABASE_URL and --env")
    group.add_argument("--queue-url", help="overrides $QUEUE_URL and --env")
    group.add_argument("--dlq-url", help="overrides $DLQ_URL and --env")
    group.add_argument("--endpoint-url", help="an AWS emulator's URL (moto, LocalStack)")
    group.add_argument("--region", help="AWS region (default: $AWS_REGION or us-east-1)")
    group.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(
        prog="jobs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[connection], help=help_text, description=help_text)

    p = command("publish", "save a job and send its message (the row exists before the message)")
    p.add_argument("type")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--payload", default="{}", help="the payload as JSON (default {})")
    source.add_argument("--payload-file", type=Path, help="read the payload JSON from a file ('-' for stdin)")
    p.add_argument("--delay", type=int, default=0, help="seconds before the message becomes visible (0-900)")
    p.add_argument("--key", help="idempotency key: publishing the same type and key again returns the first job")

    p = command("show", "one job, all fields")
    p.add_argument("id", type=uuid_type)

    p = command("list", "jobs, newest first")
    p.add_argument("--status", choices=[s.value for s in JobStatus])
    p.add_argument("--type")
    p.add_argument("--since", type=since_type, help="30m, 2h, 7d, or an ISO time")
    p.add_argument("--limit", type=positive, default=50)

    command("stats", "counts by status and type, queue depth, in-flight, DLQ depth, worker state")

    p = command("retry", "re-publish jobs from the database with fresh attempts (job ids kept)")
    p.add_argument("ids", nargs="*", type=uuid_type)
    p.add_argument("--status", choices=["failed", "pending"], help="retry every job with this status")
    p.add_argument("--type")
    p.add_argument("--since", type=since_type)
    p.add_argument("--force", action="store_true", help="also retry completed jobs")

    p = command("dlq", "inspect, redrive or purge the dead-letter queue")
    dlq_sub = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    d = dlq_sub.add_parser("peek", parents=[connection], help="show messages; they stay in the DLQ, visible at once")
    d.add_argument("--limit", type=positive, default=10)
    d = dlq_sub.add_parser("redrive", parents=[connection], help="move messages back to the main queue")
    d.add_argument("--limit", type=positive, default=1000)
    d = dlq_sub.add_parser("purge", parents=[connection], help="delete every message in the DLQ")
    d.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    p = command("logs", "the worker's log lines from CloudWatch Logs")
    p.add_argument("--job", type=uuid_type, help="only lines about this job")
    p.add_argument("--since", type=since_type, default="1h", help="default 1h")
    p.add_argument("--follow", action="store_true", help="keep printing new lines (Ctrl-C to stop)")
    p.add_argument("--log-group", help="default: the stack's WorkerLogGroupName output")

    for name, verb in (("pause", "disable"), ("resume", "enable")):
        p = command(name, f"{verb} the worker's event source mapping (messages wait safely in the queue)")
        p.add_argument("--mapping-id", help="default: the stack's EventSourceMappingId output")

    command("migrate", "apply database migrations")

    p = command("local", "run the worker against a queue on this machine, as Lambda's event source would")
    p.add_argument("--concurrency", type=positive, default=4, help="concurrent invocations (default 4)")
    p.add_argument("--batch-size", type=positive, default=None, help="default: the dev stack's setting")
    p.add_argument("--batching-window", type=float, default=None, help="seconds (default: the dev stack's)")
    p.add_argument("--timeout", type=float, default=None, help="function timeout in seconds (default: dev's)")
    p.add_argument(
        "--stale-after",
        type=positive,
        default=None,
        help="seconds before a claimed job counts as abandoned (default: timeout + 60)",
    )
    p.add_argument("--until-empty", action="store_true", help="exit once the queue is drained")
    p.add_argument("--demo", type=int, default=0, metavar="N", help="first publish N test-echo jobs, 1 in 5 failing")
    p.add_argument("--sqlite", type=Path, default=Path(".jobs-local.sqlite3"), help="embedded database file")

    help_text = "estimate a month's Lambda and SQS cost from the stack's settings, batch size 1 beside it"
    p = sub.add_parser("cost", help=help_text, description=help_text)  # offline: no connection options
    p.add_argument("--jobs-per-month", type=positive, required=True)
    p.add_argument("--avg-ms", type=milliseconds, required=True, help="a job's average handler time")
    p.add_argument("--env", default="dev", help="whose settings (batch size, memory, architecture); default dev")
    p.add_argument("--db-rtt-ms", type=milliseconds, default=1.0, help="database round trip (default 1 ms)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


# -- commands ---------------------------------------------------------------------------------------------


def cmd_publish(args: argparse.Namespace, target: Target) -> int:
    payload = _read_payload(args)
    job = publish(target.db, args.type, payload, queue=target.queue, delay_seconds=args.delay, idempotency_key=args.key)
    if args.json:
        emit_json(job)
    else:
        print(f"published {job.type} job {job.id} ({job.status.value})")
    return OK


def _read_payload(args: argparse.Namespace) -> Any:
    if args.payload_file is not None:
        name = str(args.payload_file)
        try:
            text = sys.stdin.read() if name == "-" else args.payload_file.read_text()
        except OSError as err:
            raise CliError(f"cannot read --payload-file {name}: {err.strerror}", USAGE) from None
        where = f"--payload-file {name}"
    else:
        text, where = args.payload, "--payload"
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(f"{where} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}", USAGE) from None


def cmd_show(args: argparse.Namespace, target: Target) -> int:
    job = get_job(target.db, args.id)
    if job is None:
        raise CliError(f"no job {args.id}")
    if args.json:
        emit_json(job)
    else:
        fields([(f, getattr(job, f)) for f in job.__dataclass_fields__])
    return OK


def cmd_list(args: argparse.Namespace, target: Target) -> int:
    jobs = list_jobs(target.db, status=args.status, type=args.type, since=args.since, limit=args.limit)
    if args.json:
        emit_json(jobs)
    else:
        rows = [(j.id, j.type, j.status, f"{j.attempts}/{j.max_attempts}", j.created_at, j.error) for j in jobs]
        table(rows, ["id", "type", "status", "attempts", "created", "error"])
    return OK


def cmd_stats(args: argparse.Namespace, target: Target) -> int:
    counts = count_by_status_and_type(target.db)
    oldest = list_jobs(target.db, status="pending", limit=100_000)
    oldest_age = (utcnow() - min(j.created_at for j in oldest)).total_seconds() if oldest else None
    queue = _queue_counts(target, target.queue_url)
    dlq = _queue_counts(target, target.dlq_url)
    worker_state = None
    if target.env:
        try:
            mapping_id = target.stack_output("EventSourceMappingId", "--mapping-id")
            worker_state = target.client("lambda").get_event_source_mapping(UUID=mapping_id)["State"]
        except CliError:
            worker_state = None
    data = {
        "jobs": [{"status": s, "type": t, "count": n} for (s, t), n in sorted(counts.items())],
        "queue": {"visible": queue[0], "in_flight": queue[1], "delayed": queue[2]},
        "oldest_pending_job_seconds": oldest_age,
        "dlq_depth": dlq[0] + dlq[1],
        "worker": worker_state,
    }
    if args.json:
        emit_json(data)
        return OK
    table([(s, t, n) for (s, t), n in sorted(counts.items())], ["status", "type", "jobs"])
    print()
    fields(
        [
            ("queue visible", queue[0]),
            ("queue in flight", queue[1]),
            ("queue delayed", queue[2]),
            ("oldest pending job", f"{oldest_age:.0f} s" if oldest_age is not None else None),
            ("DLQ depth", data["dlq_depth"]),
            ("worker", worker_state or "unknown (pass --env to read the event source mapping)"),
        ]
    )
    return OK


def _queue_counts(target: Target, url: str) -> tuple[int, int, int]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attrs = target.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    visible, in_flight, delayed = (int(attrs.get(n, 0)) for n in names)
    return visible, in_flight, delayed


def cmd_retry(args: argparse.Namespace, target: Target) -> int:
    if bool(args.ids) == bool(args.status):
        raise CliError("give job ids, or --status failed|pending (with optional --type/--since), not both", USAGE)
    ids = list(args.ids)
    if args.status:
        ids = [
            j.id for j in list_jobs(target.db, status=args.status, type=args.type, since=args.since, limit=1_000_000)
        ]
    progress = Progress(len(ids), "retrying")
    retried: list[UUID] = []
    refused: list[tuple[UUID, str | None]] = []
    missing: list[tuple[UUID, str | None]] = []
    queue = target.queue
    for job_id in ids:
        job = requeue_job(target.db, job_id, force=args.force)
        if job is None:
            current = get_job(target.db, job_id)
            (missing if current is None else refused).append((job_id, current.status.value if current else None))
        else:
            failures = resend([job], queue=queue)
            if failures:
                raise CliError(
                    f"job {job_id} is pending again but SQS refused its message ({failures[job_id]}); "
                    "the sweeper will send it"
                )
            mark_sent(target.db, [job_id])
            retried.append(job_id)
        progress.advance()
    progress.close()
    if args.json:
        emit_json(
            {
                "retried": retried,
                "refused": [{"id": i, "status": s} for i, s in refused],
                "missing": [i for i, _ in missing],
            }
        )
    else:
        print(f"retried {len(retried)} job(s)")
        for job_id, status in refused:
            hint = " (use --force)" if status == "completed" else ""
            print(f"refused {job_id}: it is {status}{hint}", file=sys.stderr)
        for job_id, _ in missing:
            print(f"no job {job_id}", file=sys.stderr)
    return OK if not refused and not missing else FAILED


def cmd_dlq(args: argparse.Namespace, target: Target) -> int:
    sqs = target.sqs
    if args.dlq_command == "peek":
        letters = dead_letters.receive(sqs, target.dlq_url, args.limit, hold_seconds=30)
        dead_letters.release(sqs, target.dlq_url, letters)
        if args.json:
            emit_json(
                [
                    {
                        "message_id": m.message_id,
                        "job_id": m.job_id,
                        "type": m.job_type,
                        "body": m.body,
                        "error": m.attribute("jobstack.error"),
                        "kind": m.attribute("jobstack.error-kind"),
                    }
                    for m in letters
                ]
            )
        else:
            rows = [
                (m.job_id, m.job_type, m.attribute("jobstack.error-kind"), m.attribute("jobstack.error"))
                for m in letters
            ]
            table(rows, ["job id", "type", "kind", "error"])
        return OK
    if args.dlq_command == "redrive":
        db = _optional_db(target)
        total = _queue_counts(target, target.dlq_url)[0]
        progress = Progress(min(total, args.limit), "redriving")
        report = dead_letters.redrive(
            sqs, db, target.dlq_url, target.queue_url, limit=args.limit, progress=progress.advance
        )
        progress.close()
        if args.json:
            emit_json({"moved": report.moved, "requeued_jobs": report.requeued_jobs, "failed": report.failed})
        else:
            print(
                f"moved {len(report.moved)} message(s) to the main queue; "
                f"{len(report.requeued_jobs)} job(s) given fresh attempts"
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


def _optional_db(target: Target) -> Any:
    try:
        return target.db
    except CliError:
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
            if not args.follow:
                return OK
            sys.stdout.flush()
            time.sleep(2)
    except KeyboardInterrupt:
        return OK


def cmd_pause(args: argparse.Namespace, target: Target, *, enabled: bool) -> int:
    mapping_id = args.mapping_id or target.stack_output("EventSourceMappingId", "--mapping-id")
    state = target.client("lambda").update_event_source_mapping(UUID=mapping_id, Enabled=enabled)["State"]
    verb = "resumed" if enabled else "paused"
    print(
        json.dumps({"mapping": mapping_id, "state": state})
        if args.json
        else f"worker {verb}: event source mapping {mapping_id} is {state}"
    )
    return OK


def cmd_migrate(args: argparse.Namespace, target: Target) -> int:
    from db.migrate import current, upgrade

    upgrade(target.db)
    revision = current(target.db)
    print(json.dumps({"revision": revision}) if args.json else f"{target.db.url}: at revision {revision}")
    return OK


def cmd_local(args: argparse.Namespace, target: Target) -> int:
    from cli.local import run_local

    return run_local(args, target)


def cmd_cost(args: argparse.Namespace) -> int:
    from cli import cost

    workload = {"jobs_per_month": args.jobs_per_month, "avg_ms": args.avg_ms, "db_rtt_ms": args.db_rtt_ms}
    estimates = [cost.estimate(design, **workload) for design in cost.designs(stack_settings(args.env))]
    if args.json:
        emit_json([{"name": e.design.name, **fields_of(e), "total_usd": e.total_usd} for e in estimates])
        return OK
    base = estimates[0].total_usd
    rows = [
        [
            e.design.name,
            f"{e.invocations:,}",
            f"{e.billed_ms_per_invocation:,} ms",
            f"${e.lambda_requests_usd + e.lambda_duration_usd:,.2f}",
            f"${e.sqs_usd:,.2f}",
            f"${e.total_usd:,.2f}",
            "" if e is estimates[0] else f"{e.total_usd / base:.1f}x" if base else "",
        ]
        for e in estimates
    ]
    table(rows, ["design", "invocations", "billed/invocation", "Lambda", "SQS", "total/month", "vs stack"])
    print(cost.assumptions(**workload))
    return OK


def fields_of(estimate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(estimate).items() if k != "design"}


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "cost":
        return cmd_cost(args)
    target = Target(
        env=args.env,
        database_url_flag=args.database_url,
        queue_url_flag=args.queue_url,
        dlq_url_flag=args.dlq_url,
        endpoint_url=args.endpoint_url,
        region=args.region,
    )
    handlers = {
        "publish": cmd_publish,
        "show": cmd_show,
        "list": cmd_list,
        "stats": cmd_stats,
        "retry": cmd_retry,
        "dlq": cmd_dlq,
        "logs": cmd_logs,
        "pause": lambda a, t: cmd_pause(a, t, enabled=False),
        "resume": lambda a, t: cmd_pause(a, t, enabled=True),
        "migrate": cmd_migrate,
        "local": cmd_local,
    }
    try:
        return int(handlers[args.command](args, target))
    finally:
        target.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: user mistakes and outages are one line on stderr, never a traceback."""
    try:
        return run(argv)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    except (UnknownJobType, InvalidPayload, PayloadTooLarge, ConfigError, ValueError) as err:
        print(f"error: {redact(str(err))}", file=sys.stderr)
        return USAGE
    except (PublishError, DatabaseUnavailable, JobstackError) as err:
        print(f"error: {redact(str(err))}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        return FAILED
    except Exception as err:
        if type(err).__module__.startswith(("botocore", "boto3", "urllib3")):
            print(f"error: AWS call failed: {redact(_aws_reason(err))}", file=sys.stderr)
            return FAILED
        raise


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
