"""A scheduled fire that could not publish its job is not lost: it waits in the ScheduleFailures queue and
every sweep publishes it again, once per fire, whatever the number of tries.

EventBridge Scheduler invokes Lambda asynchronously
(https://docs.aws.amazon.com/lambda/latest/dg/with-eventbridge-scheduler.html); Lambda retries a function
error of an asynchronous invocation up to MaximumRetryAttempts times, then sends an invocation record to the
on-failure destination, the original event under `requestPayload`
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html). Scheduler's own
dead-letter queue gets the target's input as the message body
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html). No Lambda runtime
runs here, so `lambda_async_invoke` plays Lambda's part by those rules, on the real entry point.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from db import DB, Queue, get_job, job_type_names
from db.exceptions import JobstackError
from stacks.periodic_jobs import ASYNC_RETRY_ATTEMPTS
from tests.support.esm import drain
from tests.support.strict_sqs import StrictSqs
from tests.support.worker_support import Calls
from worker import periodic, sweeper
from worker.runtime import Runtime

pytestmark = pytest.mark.integration
FIRE = {"schedule": "nightly", "type": "count-calls", "payload": {"n": 1}, "scheduledTime": "2026-11-29T02:00:00Z"}


def lambda_async_invoke(runtime: Runtime, event: dict[str, Any], failures: Queue) -> int:
    """One asynchronous invocation as Lambda runs it: the first try and MaximumRetryAttempts retries, then an
    on-failure record in the destination. Returns the number of tries that raised."""
    errors = 0
    for _ in range(1 + ASYNC_RETRY_ATTEMPTS):
        try:
            periodic.publish_fire(runtime, event)
            return errors
        except JobstackError as err:
            errors += 1
            last = err
    record = {
        "version": "1.0",
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": errors},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(last), "errorType": type(last).__name__},
    }
    failures.client.send_message(QueueUrl=failures.url, MessageBody=json.dumps(record))
    return errors


@pytest.fixture
def failures(sqs: StrictSqs) -> Queue:
    return Queue(sqs, sqs.create_queue(QueueName="JobsStack-dev-ScheduleFailures")["QueueUrl"])


def _jobs(pg_db: DB) -> list[Any]:
    with pg_db.engine.connect() as conn:
        return list(conn.exec_driver_sql("SELECT id, idempotency_key, status FROM background_jobs"))


def test_a_fire_of_a_type_deployed_late_is_published_by_the_sweep_after_it(
    pg_db: DB, queue: Queue, failures: Queue, runtime: Runtime, request: pytest.FixtureRequest
) -> None:
    swept = Runtime(replace(runtime.config, schedule_failures_url=failures.url), db=pg_db, sqs=runtime.sqs)
    assert "count-calls" not in job_type_names()  # the schedule's type is not registered yet

    assert lambda_async_invoke(swept, FIRE, failures) == 1 + ASYNC_RETRY_ATTEMPTS
    report = sweeper.sweep(swept)
    assert (report.fires_replayed, report.fires_still_failing) == (0, 1), "still unknown: it stays"
    assert _jobs(pg_db) == []

    request.getfixturevalue("calls")  # the type is deployed
    report = sweeper.sweep(swept)
    assert (report.fires_replayed, report.fires_still_failing) == (1, 0)
    [(job_id, key, status)] = _jobs(pg_db)
    assert key == "schedule:nightly:2026-11-29T02:00:00Z" and status == "pending"
    assert [json.loads(m["Body"])["jobId"] for m in drain(queue)] == [str(job_id)]
    assert drain(failures) == [], "the fire's message is gone once its job exists"


def test_a_fire_replayed_twice_or_published_meanwhile_is_still_one_job(
    pg_db: DB, queue: Queue, failures: Queue, runtime: Runtime, calls: Calls
) -> None:
    """Scheduler's dead letter (the input itself) and Lambda's record for the same fire, and the fire already
    published: one job."""
    swept = Runtime(replace(runtime.config, schedule_failures_url=failures.url), db=pg_db, sqs=runtime.sqs)
    first = periodic.publish_fire(swept, FIRE)
    failures.client.send_message(QueueUrl=failures.url, MessageBody=json.dumps(FIRE))
    failures.client.send_message(QueueUrl=failures.url, MessageBody=json.dumps({"requestPayload": FIRE}))
    report = sweeper.sweep(swept)
    assert report.fires_replayed == 2
    [(job_id, _, _)] = _jobs(pg_db)
    assert str(job_id) == first["job_id"]
    job = get_job(pg_db, job_id)
    assert job is not None
    assert drain(failures) == []


def test_a_message_that_is_no_fire_is_kept_and_reported_not_dropped(
    pg_db: DB, failures: Queue, runtime: Runtime
) -> None:
    swept = Runtime(replace(runtime.config, schedule_failures_url=failures.url), db=pg_db, sqs=runtime.sqs)
    failures.client.send_message(QueueUrl=failures.url, MessageBody="garbage")
    report = sweeper.sweep(swept)
    assert (report.fires_replayed, report.fires_still_failing) == (0, 1)
    assert [m["Body"] for m in drain(failures)] == ["garbage"]


def _scheduler_attributes(truncated: bool) -> dict[str, Any]:
    """The message attributes of Scheduler's dead-letter event, as its guide's "Retrieve the dead-letter
    event" shows them; the body is the target's input."""
    values = {
        "ERROR_CODE": "AWS.Lambda.ThrottlingException", "ERROR_MESSAGE": "Rate exceeded",
        "EXECUTION_ID": "0a1b2c3d", "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
        "IS_PAYLOAD_TRUNCATED": "true" if truncated else "false", "RETRY_ATTEMPTS": "185",
        "SCHEDULED_TIME": FIRE["scheduledTime"],
        "SCHEDULE_ARN": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/JobsStack-dev-nightly",
        "TARGET_ARN": "arn:aws:lambda:us-east-1:123456789012:function:scheduled",
    }  # fmt: skip
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}


def test_schedulers_dead_letter_event_is_replayed_and_a_truncated_one_kept_with_one_line(
    pg_db: DB, queue: Queue, failures: Queue, runtime: Runtime, calls: Calls
) -> None:
    swept = Runtime(replace(runtime.config, schedule_failures_url=failures.url), db=pg_db, sqs=runtime.sqs)
    failures.client.send_message(
        QueueUrl=failures.url, MessageBody=json.dumps(FIRE), MessageAttributes=_scheduler_attributes(False)
    )
    truncated = json.dumps(FIRE)[:40]  # what a cut body looks like: not JSON
    failures.client.send_message(
        QueueUrl=failures.url, MessageBody=truncated, MessageAttributes=_scheduler_attributes(True)
    )
    report = sweeper.sweep(swept)
    assert (report.fires_replayed, report.fires_still_failing) == (1, 1)
    [(_, key, _)] = _jobs(pg_db)
    assert key == "schedule:nightly:2026-11-29T02:00:00Z"
    [kept] = drain(failures)
    assert kept["Body"] == truncated
    with pytest.raises(periodic.ScheduleEventError) as caught:
        periodic.fire_of(truncated, _scheduler_attributes(True))
    assert str(caught.value) == (
        "Scheduler truncated the input of arn:aws:scheduler:us-east-1:123456789012:schedule/default/"
        "JobsStack-dev-nightly's fire at 2026-11-29T02:00:00Z: it cannot be replayed from this message, which stays "
        "in the queue; publish that run's job by hand (`jobstack publish`)"
    )
