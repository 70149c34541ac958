"""`jobstack`: publish, inspect, retry and redrive jobs; pause the worker; run the whole pipeline locally.

This module dispatches and turns every deliberate error into one line with an exit code: 0 done, 1 failed,
2 bad usage. The parser is cli/parser.py; every command is in one table (COMMANDS), each next to its
mechanics (cli/commands/jobs.py, cli/commands/queues.py, cli/commands/doctor.py, cli/local/command.py, ...),
imported only when it runs, so `jobstack --help` and shell completion never load SQLAlchemy or boto3.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cli.errors import FAILED, OK, USAGE, CliError
from cli.parser import build_parser, merge_global


@dataclass(frozen=True)
class Command:
    """Where a command's code is (imported only when it runs), and what it is given."""

    module: str
    function: str
    #: The command acts on a target (database, queues, a deployed stack): called as f(args, target).
    #: Without one it only reads this checkout (cdk.json, the parser): f(args).
    target: bool = True
    extra: tuple[tuple[str, Any], ...] = ()


#: Every command, in one table; each lives next to its mechanics.
COMMANDS: dict[str, Command] = {
    "publish": Command("cli.commands.jobs", "cmd_publish"),
    "signal": Command("cli.commands.jobs", "cmd_signal"),
    "show": Command("cli.commands.jobs", "cmd_show"),
    "list": Command("cli.commands.jobs", "cmd_list"),
    "retry": Command("cli.commands.jobs", "cmd_retry"),
    "migrate": Command("cli.commands.jobs", "cmd_migrate"),
    "prune": Command("cli.commands.jobs", "cmd_prune"),
    "cancel": Command("cli.commands.jobs", "cmd_cancel"),
    "audit": Command("cli.commands.jobs", "cmd_audit"),
    "stats": Command("cli.commands.queues", "cmd_stats"),
    "routes": Command("cli.commands.queues", "cmd_routes"),
    "dlq": Command("cli.commands.queues", "cmd_dlq"),
    "logs": Command("cli.commands.queues", "cmd_logs"),
    "pause": Command("cli.commands.queues", "cmd_pause", extra=(("enabled", False),)),
    "resume": Command("cli.commands.queues", "cmd_pause", extra=(("enabled", True),)),
    "doctor": Command("cli.commands.doctor", "cmd_doctor"),
    "local": Command("cli.local.command", "run_local"),
    "console": Command("cli.console.command", "cmd_console"),
    "cost": Command("cli.commands.cost", "cmd_cost", target=False),
    "schedules": Command("cli.commands.schedules", "cmd_schedules", target=False),
    "completion": Command("cli.commands.completion", "cmd_completion", target=False),
}


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = merge_global(parser.parse_args(argv), dict(os.environ))
    command = COMMANDS[args.command]
    handler: Callable[..., int] = getattr(importlib.import_module(command.module), command.function)
    extra = dict(command.extra)
    if not command.target:
        return int(handler(args, **extra))
    from cli.target import Target

    target = Target(
        env=args.env,
        database_url_flag=args.database_url,
        queue_url_flag=args.queue_url,
        dlq_url_flag=args.dlq_url,
        endpoint_url=args.endpoint_url,
        region=args.region,
        pool=args.pool,
    )
    try:
        return int(handler(args, target, **extra))
    finally:
        target.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: user mistakes and outages are one line on stderr, never a traceback."""
    try:
        return run(argv)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        return FAILED
    except BrokenPipeError:  # `jobstack list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except Exception as err:
        code = _one_line(err)
        if code is None:
            raise
        return code


def _one_line(err: Exception) -> int | None:
    """Print a deliberate error (ours, or an AWS call's) as one redacted line; None for a bug."""
    from db import (
        ConfigError,
        DatabaseUnavailable,
        InvalidPayload,
        JobstackError,
        PayloadTooLarge,
        PublishError,
        UnknownJobType,
        redact,
    )

    if isinstance(err, UnknownJobType | InvalidPayload | PayloadTooLarge | ConfigError | ValueError):
        print(f"error: {redact(str(err))}", file=sys.stderr)
        return USAGE
    if isinstance(err, PublishError | DatabaseUnavailable | JobstackError):
        print(f"error: {redact(str(err))}", file=sys.stderr)
        return FAILED
    if type(err).__module__.startswith(("botocore", "boto3", "urllib3")):
        from cli.target import _aws_reason

        print(f"error: AWS call failed: {redact(_aws_reason(err))}", file=sys.stderr)
        return FAILED
    return None


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
