"""The Lambda entry EventBridge Scheduler invokes for a periodic job: `worker.scheduled.handler`.

Its name is the one deployed stacks' functions already carry (their Handler), so it stays; the periodic
jobs' code is worker/periodic.py. Like the sweeper, it imports no job handlers: it only writes rows and
sends messages.
"""

from __future__ import annotations

from typing import Any

from worker.periodic import ScheduleEventError, publish_fire, replay_failed_fires
from worker.runtime import current

__all__ = ["ScheduleEventError", "handler", "publish_fire", "replay_failed_fires"]


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    return publish_fire(current(), event)
