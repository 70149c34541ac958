"""Commands that show what this checkout's cdk.json will deploy, without AWS: `jobstack schedules`."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from cli.errors import OK
from cli.output import emit_json, table
from cli.target import stack_settings
from db import utcnow
from stacks.settings import Settings


def schedule_rows(settings: Settings, after: datetime) -> list[dict[str, Any]]:
    """Each schedule of `settings` with its next three fire times after `after` (`jobstack schedules`, the console)."""
    return [
        {
            "name": schedule.name,
            "expression": schedule.expression,
            "timezone": schedule.timezone,
            "type": schedule.type,
            "payload": schedule.payload_dict,
            "next": [f.isoformat() for f in schedule.next_fires(after)],
        }
        for schedule in settings.schedules
    ]


def cmd_schedules(args: argparse.Namespace, now: datetime | None = None) -> int:
    """The environment's schedules from cdk.json, each with its next three fire times in its time zone."""
    settings = stack_settings(args.env or "dev")
    rows = schedule_rows(settings, now or utcnow())
    if args.json:
        emit_json(rows)
        return OK
    if not rows:
        env = settings.env_name
        print(f"JobsStack-{env} has no schedules (cdk.json: jobstack.environments.{env}.schedules)")
        return OK
    table(
        [
            (r["name"], r["expression"], r["timezone"], r["type"], ", ".join(r["next"]) or "every period from deploy")
            for r in rows
        ],
        ["name", "schedule", "time zone", "type", "next fire times"],
    )
    return OK
