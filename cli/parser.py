"""The `jobstack` command line: argument types and the parser (what each command accepts, and its help).

Every command takes the connection options after its name, e.g.
`jobstack publish test-echo --payload '{}' --queue-url URL`. Exit codes: 0 done, 1 failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from cli.argument_types import (
    duration_type,
    job_id_or_prefix,
    milliseconds,
    payload_search_type,
    positive,
    since_type,
    uuid_type,
)
from cli.dead_letter_kinds import ALL_KINDS, JOB_STATUSES, NEVER_SUCCEED
from cli.errors import USAGE
from cli.job_options import add_option_flags

DESCRIPTION = "publish, inspect, retry and redrive jobs; pause the worker; run the whole pipeline locally"


# -- the parser -------------------------------------------------------------------------------------------

GLOBAL = "global_"
CONNECTION_OPTIONS = ("env", "pool", "database_url", "queue_url", "dlq_url", "endpoint_url", "region", "json")
GLOBAL_NOTE = (
    "\n\nconnection options go before or after the command (`jobstack --env dev list`, `jobstack list --env dev`);"
    "\n$JOBS_ENV stands for --env."
)


def _connection_options(group: argparse._ArgumentGroup, *, prefix: str) -> None:
    def dest(name: str) -> dict[str, Any]:
        if not prefix:
            return {}
        return {"dest": f"{prefix}{name}"} | ({"metavar": name.upper()} if name != "json" else {})

    group.add_argument(
        "--env", help="read URLs and the database secret from deployed JobsStack-ENV ($JOBS_ENV)", **dest("env")
    )
    group.add_argument(
        "--pool", help="a worker pool's queue, DLQ, worker and mapping (default: the default pool)", **dest("pool")
    )
    group.add_argument("--database-url", help="overrides $DATABASE_URL and --env", **dest("database_url"))
    group.add_argument("--queue-url", help="overrides $QUEUE_URL and --env", **dest("queue_url"))
    group.add_argument("--dlq-url", help="overrides $DLQ_URL and --env", **dest("dlq_url"))
    group.add_argument("--endpoint-url", help="an AWS emulator's URL (moto, LocalStack)", **dest("endpoint_url"))
    group.add_argument("--region", help="AWS region (default: $AWS_REGION or us-east-1)", **dest("region"))
    group.add_argument("--json", action="store_true", help="machine-readable output", **dest("json"))


def merge_global(args: argparse.Namespace, environ: dict[str, str]) -> argparse.Namespace:
    """Options given before the command count as if given after it (after wins); then $JOBS_ENV."""
    for name in CONNECTION_OPTIONS:
        before = getattr(args, f"{GLOBAL}{name}", None)
        if hasattr(args, f"{GLOBAL}{name}"):
            delattr(args, f"{GLOBAL}{name}")
        if before and not getattr(args, name, None):
            setattr(args, name, before)
    if not getattr(args, "env", None) and environ.get("JOBS_ENV"):
        args.env = environ["JOBS_ENV"]
    return args


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage before a mistake; the `jobstack` command prints one line that names the
    mistake and where the help is (subcommands inherit the class)."""

    def error(self, message: str) -> NoReturn:
        if message.endswith("expected one argument"):  # `--in -3h`: argparse reads -3h as an option
            message += " (a value that starts with '-' is written --option=VALUE)"
        self.exit(USAGE, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    connection = OneLineParser(add_help=False)
    _connection_options(connection.add_argument_group("connection"), prefix="")

    parser = OneLineParser(
        prog="jobstack", description=DESCRIPTION + GLOBAL_NOTE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # The same options before the command (`jobstack --env dev list`): their own names, merged by `merge_global`,
    # because a subcommand's defaults would overwrite values parsed before it.
    _connection_options(parser.add_argument_group("connection (also accepted before the command)"), prefix=GLOBAL)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[connection], help=help_text, description=help_text)

    p = command("publish", "save a job and send its message (the row exists before the message)")
    p.add_argument("type")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--payload", default="{}", help="the payload as JSON (default {})")
    source.add_argument("--payload-file", type=Path, help="read the payload JSON from a file ('-' for stdin)")
    add_option_flags(p)  # every JobOptions key (cli/job_options.py)
    p.add_argument(
        "--allow-past", action="store_true", help="accept an --at more than a minute ago (the job then runs now)"
    )

    p = command("signal", "signal the jobs waiting on KEY (ctx.wait_for_signal): they resume with the payload")
    p.add_argument("key", help="the key the jobs wait on, e.g. refund-approval:4711")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--payload", help="the signal's payload as JSON (default null)")
    source.add_argument("--payload-file", type=Path, help="read the payload JSON from a file ('-' for stdin)")

    command("routes", "the line a web app exports to publish to every pool: export JOBSTACK_ROUTES='...'")

    p = command("show", "one job, all fields")
    p.add_argument(
        "id", type=job_id_or_prefix, help="the job's id, or enough of its start to name one job (8 hex digits, say)"
    )

    p = command("list", "jobs, newest first")
    p.add_argument("--status", choices=JOB_STATUSES)
    p.add_argument("--type")
    p.add_argument("--group", type=uuid_type, metavar="ID", help="the jobs of one group or chain (its workflow id)")
    p.add_argument("--since", type=since_type, help="30m, 2h, 7d, or an ISO time")
    p.add_argument(
        "--payload",
        type=payload_search_type,
        metavar="SEARCH",
        help="jobs whose payload contains this: customer_id=4711 (address.city=Oslo for a nested key), or JSON",
    )
    p.add_argument("--limit", type=positive, default=50)

    p = command("audit", "the operators' actions, newest first: who retried, cancelled, redrove, pruned, paused")
    p.add_argument("--action", choices=["retry", "cancel", "redrive", "prune", "pause", "resume", "publish", "signal"])
    p.add_argument("--limit", type=positive, default=50)

    p = command("stats", "counts by status and type, queue depth, in-flight, DLQ depth, worker state")
    p.add_argument(
        "--watch", type=float, nargs="?", const=2.0, metavar="SECONDS", help="refresh every SECONDS (default 2)"
    )
    p.add_argument("--count", type=positive, help="with --watch: stop after this many refreshes (default: Ctrl-C)")
    p.add_argument(
        "--by-tenant", action="store_true", help="each tenant's backlog, running and failed jobs, largest backlog first"
    )
    p.add_argument("--limit", type=positive, default=20, help="with --by-tenant: this many tenants (default 20)")

    p = command("retry", "re-publish jobs from the database with fresh attempts (job ids kept)")
    p.add_argument("ids", nargs="*", type=uuid_type)
    p.add_argument(
        "--status",
        choices=["failed", "pending"],
        help="retry every job with this status (failed: those with no attempts left, unless --force)",
    )
    p.add_argument("--type")
    p.add_argument("--since", type=since_type)
    p.add_argument(
        "--force",
        action="store_true",
        help="also pending jobs and failed ones with attempts left (a second message), completed and cancelled ones",
    )
    p.add_argument(
        "--from-scratch",
        action="store_true",
        help="forget the jobs' completed steps (ctx.step), so every step runs again; by default they are kept",
    )

    p = command("cancel", "cancel jobs: waiting ones never run, running ones are asked to stop, completed refused")
    p.add_argument("ids", nargs="*", type=uuid_type)
    p.add_argument(
        "--status", choices=["pending", "failed", "scheduled", "waiting"], help="cancel every job with this status"
    )
    p.add_argument("--type")
    p.add_argument("--group", type=uuid_type, metavar="ID", help="cancel what has not finished of a group or chain")

    p = command("dlq", "inspect, redrive or purge the dead-letter queue")
    dlq_sub = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    d = dlq_sub.add_parser("peek", parents=[connection], help="show messages; they stay in the DLQ, visible at once")
    d.add_argument("--limit", type=positive, default=10)
    d = dlq_sub.add_parser(
        "redrive",
        parents=[connection],
        help="move the messages present now back to the main queue (not those no redrive can fix)",
    )
    d.add_argument("--limit", type=positive, default=1000)
    d.add_argument(
        "--include",
        action="append",
        choices=sorted(NEVER_SUCCEED),
        metavar="KIND",
        help=f"also move this kind ({', '.join(sorted(NEVER_SUCCEED))}); repeatable",
    )
    d.add_argument(
        "--kind",
        action="append",
        choices=ALL_KINDS,
        metavar="KIND",
        help="move only dead letters of this kind (repeatable); the others stay in the DLQ, untouched",
    )
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

    p = command(
        "doctor",
        "check a deployed environment: outputs, secret, database (TLS, migrations), queues, Lambda quota, alarms",
    )
    p.add_argument("--ca-file", help="verify the database against this CA file (default: the settings' or the OS's)")
    p.add_argument(
        "--before-deploy",
        action="store_true",
        help="only what a deploy needs first: the account's Lambda concurrency for these reservations, schedule types",
    )

    p = command("prune", "delete completed and exhausted failed jobs older than their retention, in batches")
    p.add_argument(
        "--older-than",
        type=duration_type,
        default=None,
        help="30d, 12h, 2w (default: the environment's completed_retention_days / failed_retention_days)",
    )
    p.add_argument("--status", choices=["completed", "failed", "cancelled"], help="only this status (default: all)")
    p.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")

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
    p.add_argument(
        "--publish",
        nargs=2,
        action="append",
        metavar=("TYPE", "PAYLOAD"),
        help="first publish a job of your own type with this JSON payload (repeatable); runs until the queue is empty",
    )
    p.add_argument("--sqlite", type=Path, default=Path(".jobs-local.sqlite3"), help="embedded database file")
    p.add_argument(
        "--console",
        action="store_true",
        help="also serve `jobstack console` on this run's database and queues (its URL is printed); in a terminal it "
        "stays up after the run until Ctrl-C",
    )

    p = command("console", "the operators' web console on this machine: jobs, dead letters, schedules, actions")
    p.add_argument("--port", type=int, default=8787, help="default 8787 (0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="the address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--read-only", action="store_true", help="no retry, cancel or redrive: look, don't touch")
    p.add_argument("--sqlite", type=Path, help="a local SQLite database file (what `jobstack local` leaves behind)")

    p = sub.add_parser("completion", help='print a shell completion script: eval "$(jobstack completion bash)"')
    p.add_argument("shell", choices=["bash", "zsh"])

    help_text = "the environment's periodic jobs (cdk.json schedules) with their next fire times (offline)"
    p = sub.add_parser("schedules", help=help_text, description=help_text)
    p.add_argument("--env", help="whose schedules; default dev ($JOBS_ENV)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    help_text = "estimate a month's Lambda and SQS cost from the stack's settings, batch size 1 beside it"
    p = sub.add_parser("cost", help=help_text, description=help_text)  # offline: no connection options
    p.add_argument("--jobs-per-month", type=positive, required=True)
    p.add_argument("--avg-ms", type=milliseconds, required=True, help="a job's average handler time")
    p.add_argument("--env", help="whose settings (batch size, memory, architecture); default dev ($JOBS_ENV)")
    p.add_argument("--pool", help="a worker pool's settings (default: the default pool's)")
    p.add_argument("--db-rtt-ms", type=milliseconds, default=1.0, help="database round trip (default 1 ms)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return parser
