"""Periodic jobs (cdk.json `schedules`): publishing one fire, and replaying the fires that failed.

EventBridge Scheduler invokes `worker.scheduled.handler` (worker/scheduled.py, the deployed entry) for each
fire of a schedule (stacks/periodic_jobs.py). "Periodic" is the cron kind of job; a "scheduled" job is
one published with a `run_at` ahead, whose row waits as `scheduled` until the sweeper releases it.

The schedule's input names the job and carries `<aws.scheduler.scheduled-time>`, the fire time Scheduler
substitutes. The job is published through `publish()` with the idempotency key `schedule:NAME:TIME`, so a
duplicate fire or a retried invocation (Scheduler retries, Lambda retries asynchronous invocations) makes
exactly one job. Like the sweeper, it imports no job handlers: it only writes rows and sends messages.

Scheduler invokes this asynchronously, so a fire that raises here (database down, a type this worker does
not register) is retried twice by Lambda and then lands in the ScheduleFailures queue, as Lambda's
on-failure record (the original event under `requestPayload`) or as Scheduler's own dead letter (the event
itself). `replay_failed_fires`, run by every sweep, publishes those fires again: the idempotency key makes
each one job however often it is tried, and a fire that still fails stays in the queue for the next sweep.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from db import JobstackError, publish
from worker.observability import LOGGER_NAME
from worker.runtime import Runtime
from worker.transport import delete_failed_fire, receive_failed_fires, release_failed_fires

log = logging.getLogger(LOGGER_NAME)


class ScheduleEventError(JobstackError, ValueError):
    """The invocation is not a schedule's: one line naming what is missing."""


def publish_fire(runtime: Runtime, event: dict[str, Any]) -> dict[str, str]:
    missing = [key for key in ("schedule", "scheduledTime", "type") if not isinstance(event.get(key), str)]
    if missing:
        raise ScheduleEventError(f"not a schedule's event: no {', '.join(missing)} (see stacks/periodic_jobs.py)")
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


#: Fires replayed per sweep at most (10 per receive): a backlog drains over a few sweeps.
REPLAY_LIMIT = 200


@dataclass
class ReplayReport:
    published: list[str] = field(default_factory=list)  # the idempotency keys of the fires now published
    failed: dict[str, str] = field(default_factory=dict)  # message id -> why it stays in the queue


def fire_of(body: str, attributes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The schedule's event in a ScheduleFailures message. Lambda's on-failure record carries it under
    `requestPayload` (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
    Scheduler's dead-letter event (https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html,
    "Retrieve the dead-letter event") is the target's input as the body, the invocation details in message
    attributes (ERROR_CODE, ERROR_MESSAGE, SCHEDULE_ARN, SCHEDULED_TIME, IS_PAYLOAD_TRUNCATED, ...): a body
    Scheduler truncated cannot be replayed, and says so in one line rather than as a JSON error."""
    attributes = attributes or {}
    if _attribute(attributes, "IS_PAYLOAD_TRUNCATED") == "true":
        schedule = _attribute(attributes, "SCHEDULE_ARN") or "a schedule"
        when = _attribute(attributes, "SCHEDULED_TIME") or "an unknown time"
        raise ScheduleEventError(
            f"Scheduler truncated the input of {schedule}'s fire at {when}: it cannot be replayed from this "
            "message, which stays in the queue; publish that run's job by hand (`jobstack publish`)"
        )
    try:
        record = json.loads(body)
    except ValueError:
        raise ScheduleEventError("not a schedule's event: the body is not JSON") from None
    if not isinstance(record, dict):
        raise ScheduleEventError("not a schedule's event: the body is not a JSON object")
    event = record.get("requestPayload", record)
    if not isinstance(event, dict):
        raise ScheduleEventError("not a schedule's event: requestPayload is not an object")
    return event


def _attribute(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    return str(value.get("StringValue")) if isinstance(value, Mapping) and "StringValue" in value else None


def replay_failed_fires(runtime: Runtime, url: str, *, visibility_seconds: int = 120) -> ReplayReport:
    """Publish the fires that failed, deleting each message once its job exists. Messages are hidden for
    `visibility_seconds` (the sweeper's timeout) while this sweep works, so it reads each once; those that
    still fail, and those that are not fires at all, are made visible again at the end for the next sweep:
    logged, never dropped (the queue's 14-day retention is the only thing that removes them)."""
    report = ReplayReport()
    keep: list[str] = []
    while len(report.published) + len(report.failed) < REPLAY_LIMIT:
        messages = receive_failed_fires(runtime.sqs, url, visibility_seconds=visibility_seconds)
        if not messages:
            break
        for message in messages:
            message_id = str(message.get("MessageId"))
            try:
                published = publish_fire(runtime, fire_of(message.get("Body", ""), message.get("MessageAttributes")))
            except JobstackError as err:  # database down, unknown type, not a fire: one line, retried next sweep
                report.failed[message_id] = str(err)
                keep.append(message["ReceiptHandle"])
                log.error("a failed scheduled fire could not be published yet", extra={"message_id": message_id,
                          "error": str(err)})  # fmt: skip
                continue
            delete_failed_fire(runtime.sqs, url, message["ReceiptHandle"])
            report.published.append(published["idempotency_key"])
    release_failed_fires(runtime.sqs, url, keep)
    return report
