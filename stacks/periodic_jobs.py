"""Each periodic job of cdk.json's `schedules` as an EventBridge Scheduler schedule invoking worker/scheduled.py
(the entry; the code is worker/periodic.py).

Scheduler (not an EventBridge rule) because it takes the schedule's IANA time zone, so "03:00 in Paris"
stays 03:00 across daylight saving. Flexible time window off: a job fires at its time. The input carries
`<aws.scheduler.scheduled-time>`, which the entry point makes the job's idempotency key with the
schedule's name: however often one fire is retried or replayed, it makes one job.

Scheduler invokes Lambda *asynchronously*
(https://docs.aws.amazon.com/lambda/latest/dg/with-eventbridge-scheduler.html): its RetryPolicy covers only a
failed invoke call (throttled, no permission), never the function's own error, which Lambda's asynchronous
invocation handles (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html). So:
- the function's EventInvokeConfig bounds Lambda's retries (2, within an hour) and sends an invocation that
  still failed to the on-failure destination, the ScheduleFailures queue, with the original event;
- Scheduler's own dead-letter queue is the same queue, for an invocation Scheduler could not make;
- the sweeper replays that queue every run (worker/periodic.py), so a fire lost to a database outage or a
  type deployed late is published once things work, and alarms on the function's errors and on the queue's
  arrivals tell people meanwhile (stacks/monitoring.py).
One role, assumable by Scheduler for this account only, may invoke that one function and send to that queue.
"""

from __future__ import annotations

import json

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.schedules import Schedule

#: Scheduler's retries of an invoke call it could not make (its default is 185 over a day): a few, within
#: the hour; then the call goes to the ScheduleFailures queue.
RETRY_ATTEMPTS = 3
MAX_EVENT_AGE_SECONDS = 3600
#: Lambda's retries of the function's own error on an asynchronous invocation (AWS allows 0-2), and how old
#: an event may get waiting for them, before it goes to the on-failure destination.
ASYNC_RETRY_ATTEMPTS = 2
ASYNC_MAX_EVENT_AGE_SECONDS = 3600


class PeriodicJobs(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        schedules: tuple[Schedule, ...],
        target: lambda_.Function,
        failures: sqs.IQueue,
        key_use: list[iam.PolicyStatement],
    ) -> None:
        super().__init__(scope, construct_id)
        self.invoke_config = lambda_.CfnEventInvokeConfig(
            self,
            "AsyncFailures",
            function_name=target.function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=ASYNC_RETRY_ATTEMPTS,
            maximum_event_age_in_seconds=ASYNC_MAX_EVENT_AGE_SECONDS,
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(destination=failures.queue_arn)
            ),
        )
        # Lambda sends the failure record with the function's own role; Scheduler its dead letter with its role.
        target.add_to_role_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[failures.queue_arn]))
        self.role = iam.Role(
            self,
            "InvokeRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description="EventBridge Scheduler: invoke the scheduled-jobs function; dead letters to its failure queue",
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[target.function_arn]))
        self.role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[failures.queue_arn]))
        for statement in key_use:
            self.role.add_to_policy(statement)
        self.schedules = [
            scheduler.CfnSchedule(
                self,
                f"Schedule-{schedule.name}",
                description=f"jobstack schedule {schedule.name}: publishes a {schedule.type} job",
                schedule_expression=schedule.expression,
                schedule_expression_timezone=schedule.timezone,
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=target.function_arn,
                    role_arn=self.role.role_arn,
                    input=json.dumps(
                        {
                            "schedule": schedule.name,
                            "type": schedule.type,
                            "payload": schedule.payload_dict,
                            "scheduledTime": "<aws.scheduler.scheduled-time>",
                        }
                    ),
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                        maximum_retry_attempts=RETRY_ATTEMPTS, maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS
                    ),
                    dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=failures.queue_arn),
                ),
            )
            for schedule in schedules
        ]
