"""The job options (`jobstack.JobOptions`) as `jobstack publish` flags: one row per option, so an option added
to JobOptions is one row here (a test fails until it is), and the CLI's values go through the same
`publish(**options)` and the same validation as a web app's."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cli.argument_types import at_type, duration_type, uuid_type

if TYPE_CHECKING:  # `jobstack --help` and completion load no database code (tests/cli/test_output.py)
    from db import JobOptions


@dataclass(frozen=True)
class Flag:
    flag: str
    help: str
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    many: bool = False  # repeatable: each use adds one value
    when: bool = field(default=False)  # one of the mutually exclusive "when to run" flags


#: Every JobOptions key, by the flag that gives it.
FLAGS: dict[str, Flag] = {
    "delay_seconds": Flag("--delay", "seconds before the message becomes visible (0-900)", int, when=True),
    "run_at": Flag("--at", "run at this time: 2026-12-01T09:00Z (ISO 8601; UTC if no zone)", at_type, when=True),
    "delay": Flag("--in", "run after 90m, 3h, 2d", duration_type, metavar="DURATION", when=True),
    "idempotency_key": Flag("--key", "idempotency key: publishing the same type and key again returns the first job"),
    "max_attempts": Flag("--max-attempts", "attempts before it fails for good (default: its type's)", int),
    "ordering_key": Flag("--ordering-key", "FIFO pools: jobs with one key run one at a time, in publishing order"),
    "after": Flag(
        "--after", "a job id this one waits for (repeat for several)", uuid_type, metavar="JOB_ID", many=True
    ),
    "on_failure": Flag("--on-failure", "with --after: if one fails for good", choices=("cancel", "continue")),
    "unique_key": Flag("--unique-key", "one job of this type and key not started yet: a second publish returns it"),
    "on_conflict": Flag(
        "--on-conflict",
        "with --unique-key: keep the waiting job, or replace its payload and time",
        choices=("keep", "replace"),
    ),
    "concurrency_key": Flag("--concurrency-key", "the key its handler's concurrency_per_key counts (a tenant, say)"),
    "priority": Flag("--priority", "run in this priority lane (a pool with `priority` in the stack's settings)"),
    "tenant": Flag("--tenant", "the customer it is for: kept on the row, and SQS fair queues' MessageGroupId"),
}


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    when = parser.add_mutually_exclusive_group()
    for name, flag in FLAGS.items():
        target = when if flag.when else parser
        kwargs: dict[str, Any] = {"dest": f"option_{name}", "help": flag.help}
        if flag.type is not None:
            kwargs["type"] = flag.type
        if flag.choices is not None:
            kwargs["choices"] = flag.choices
        if flag.metavar is not None:
            kwargs["metavar"] = flag.metavar
        if flag.many:
            kwargs["action"] = "append"
        target.add_argument(flag.flag, **kwargs)


def options_of(args: argparse.Namespace) -> JobOptions:
    """The options the command line gave (the ones it did not give keep publish's defaults)."""
    given: dict[str, Any] = {name: getattr(args, f"option_{name}") for name in FLAGS}
    options: JobOptions = {}
    options.update({name: value for name, value in given.items() if value is not None})  # type: ignore[typeddict-item]
    return options
