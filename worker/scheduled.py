"""The entry point EventBridge Scheduler invokes for a periodic job (stacks/scheduled_jobs.py).

The schedule's input names the job and carries `<aws.scheduler.scheduled-time>`, the fire time Scheduler
substitutes. The job is published through `publish()` with the idempotency key `schedule:NAME:TIME`, so a
duplicate fire or a retried invocation (Scheduler retries, Lambda retries asynchronous invocations) makes
exactly one job. Like the sweeper, it imports no job handlers: it only writes rows and sends messages.
"""

from __future__ import annotations

import logging
from typing import Any

from db import publish
from worker.config import log_level_number
from worker.observability import LOGGER_NAME, configure_logging
from worker.runtime import Runtime

log = logging.getLogger(LOGGER_NAME)
_runtime: Runtime | None = None


class ScheduleEventError(ValueError):
    """The invocation is not a schedule's: one line naming what is missing."""


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    global _runtime
    if _runtime is None:
        _runtime = Runtime.from_environ()
        configure_logging(log_level_number(_runtime.config))
    return publish_fire(_runtime, event)


def publish_fire(runtime: Runtime, event: dict[str, Any]) -> dict[str, str]:
    missing = [key for key in ("schedule", "scheduledTime", "type") if not isinstance(event.get(key), str)]
    if missing:
        raise ScheduleEventError(f"not a schedule's event: no {', '.join(missing)} (see stacks/scheduled_jobs.py)")
    payload = event.get("payload") or {}
    key = f"schedule:{event['schedule']}:{event['scheduledTime']}"
    job = publish(
        runtime.db,
        event["type"],
        payload,
        queue=runtime.config.destination(runtime.sqs),  # the type's pool queue
        idempotency_key=key[:255],
    )
    log.info(
        "scheduled job published",
        extra={"schedule": event["schedule"], "scheduled_time": event["scheduledTime"], "job_id": str(job.id)},
    )
    return {"job_id": str(job.id), "idempotency_key": key[:255]}
