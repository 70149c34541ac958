"""Each periodic job of cdk.json's `schedules` as an EventBridge Scheduler schedule invoking worker/scheduled.py.

Scheduler (not an EventBridge rule) because it takes the schedule's IANA time zone, so "03:00 in Paris"
stays 03:00 across daylight saving. Flexible time window off: a job fires at its time. The input carries
`<aws.scheduler.scheduled-time>`, which the entry point makes the job's idempotency key with the
schedule's name: Scheduler's own retries and Lambda's retries of the asynchronous invocation make one job.
One role, assumable by Scheduler for this account only, may invoke that one function and nothing else.
"""

from __future__ import annotations

import json

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from stacks.schedules import Schedule

#: Scheduler's retries of a failed invocation (its default is 185 over a day): a few, within the hour;
#: an unknown job type or an outage then shows as the function's errors and alarms instead of a day of retries.
RETRY_ATTEMPTS = 3
MAX_EVENT_AGE_SECONDS = 3600


class ScheduledJobs(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, schedules: tuple[Schedule, ...], target: lambda_.IFunction
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "InvokeRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description="EventBridge Scheduler: invoke the scheduled-jobs function, nothing else",
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[target.function_arn]))
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
                ),
            )
            for schedule in schedules
        ]
