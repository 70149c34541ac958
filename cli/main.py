"""`jobs`: publish, inspect, retry and redrive jobs; pause the worker; run the whole pipeline locally.

This module dispatches and turns every deliberate error into one line with an exit code: 0 done, 1 failed,
2 bad usage. The parser is cli/parser.py; the commands are cli/job_commands.py and cli/queue_commands.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from cli.errors import FAILED, OK, USAGE, CliError
from cli.job_commands import cmd_list, cmd_migrate, cmd_prune, cmd_publish, cmd_retry, cmd_show
from cli.parser import build_parser, merge_global
from cli.queue_commands import cmd_cost, cmd_dlq, cmd_doctor, cmd_local, cmd_logs, cmd_pause, cmd_stats
from cli.target import Target, _aws_reason
from db import (
    ConfigError,
    DatabaseUnavailable,
    InvalidPayload,
    JobstackError,
    PayloadTooLarge,
    PublishError,
    UnknownJobType,
)
from db.engine import redact


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = merge_global(parser.parse_args(argv), dict(os.environ))
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
        "prune": cmd_prune,
        "doctor": cmd_doctor,
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
    except BrokenPipeError:  # `jobs list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except Exception as err:
        if type(err).__module__.startswith(("botocore", "boto3", "urllib3")):
            print(f"error: AWS call failed: {redact(_aws_reason(err))}", file=sys.stderr)
            return FAILED
        raise


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
