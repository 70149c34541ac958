"""`jobs`: publish, inspect, retry and redrive jobs; pause the worker; run the whole pipeline locally.

This module dispatches and turns every deliberate error into one line with an exit code: 0 done, 1 failed,
2 bad usage. The parser is cli/parser.py; the commands are cli/job_commands.py and cli/queue_commands.py,
imported only when a command runs, so `jobs --help` and shell completion never load SQLAlchemy or boto3.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from cli.errors import FAILED, OK, USAGE, CliError
from cli.parser import build_parser, merge_global

# command -> (module, function, extra keyword arguments)
_COMMANDS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "publish": ("cli.job_commands", "cmd_publish", {}),
    "show": ("cli.job_commands", "cmd_show", {}),
    "list": ("cli.job_commands", "cmd_list", {}),
    "retry": ("cli.job_commands", "cmd_retry", {}),
    "migrate": ("cli.job_commands", "cmd_migrate", {}),
    "prune": ("cli.job_commands", "cmd_prune", {}),
    "cancel": ("cli.job_commands", "cmd_cancel", {}),
    "stats": ("cli.queue_commands", "cmd_stats", {}),
    "routes": ("cli.queue_commands", "cmd_routes", {}),
    "dlq": ("cli.queue_commands", "cmd_dlq", {}),
    "logs": ("cli.queue_commands", "cmd_logs", {}),
    "pause": ("cli.queue_commands", "cmd_pause", {"enabled": False}),
    "resume": ("cli.queue_commands", "cmd_pause", {"enabled": True}),
    "doctor": ("cli.queue_commands", "cmd_doctor", {}),
    "local": ("cli.queue_commands", "cmd_local", {}),
}


def _command(name: str) -> Callable[..., int]:
    module, function, extra = _COMMANDS[name]
    handler = getattr(importlib.import_module(module), function)
    return (lambda args, target: handler(args, target, **extra)) if extra else handler


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = merge_global(parser.parse_args(argv), dict(os.environ))
    if args.command == "cost":
        from cli.queue_commands import cmd_cost

        return cmd_cost(args)
    if args.command == "schedules":
        from cli.queue_commands import cmd_schedules

        return cmd_schedules(args)
    if args.command == "completion":
        from cli.completion import print_completion

        return print_completion(parser, args.shell)
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
        return int(_command(args.command)(args, target))
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
    except BrokenPipeError:  # `jobs list | head`: the reader left; say nothing more
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
