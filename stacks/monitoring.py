"""Alarms that reach people, and a dashboard: the Jobs construct's monitoring, apart from what it monitors.

Not a construct of its own: the resources are created in the `Jobs` construct's scope, so their logical ids
(and a deployed topic's confirmed e-mail subscriptions) stay what they were before this module existed.

The topic's resource policy must let CloudWatch publish: an SNS topic policy replaces SNS's default policy,
and the TLS-only Deny alone allows nobody, so alarms would fire into nothing ("... is not authorized to
perform: SNS:Publish ... because no resource-based policy allows it"). CloudWatch is allowed for this
account's alarms of this stack only (`aws:SourceAccount`, `aws:SourceArn`: AWS's confused-deputy guard,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.settings import Settings

METRICS_NAMESPACE = "Jobstack"


class Monitoring:
    def __init__(
        self,
        scope: Construct,
        *,
        settings: Settings,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        worker: lambda_.Function,
        sweeper: lambda_.Function,
    ) -> None:
        self.scope, self.settings, self.queue, self.dead_letter_queue = scope, settings, queue, dead_letter_queue
        self.worker, self.sweeper = worker, sweeper
        self.topic = sns.Topic(scope, "AlarmTopic", display_name=f"{settings.stack_name} alarms", enforce_ssl=True)
        for email in settings.alarm_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.alarms = self._alarms(settings)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisStack",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Stack.of(scope).account},
                    "ArnEquals": {"aws:SourceArn": [alarm.alarm_arn for alarm in self.alarms]},
                },
            )
        )
        self.dashboard = self._dashboard(settings)

    def _alarms(self, settings: Settings) -> list[cw.Alarm]:
        """Each alarm: (id, what it means for an operator, metric, threshold, operator, periods)."""
        at_least = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        one_minute, five_minutes = Duration.minutes(1), Duration.minutes(5)
        specs: list[tuple[str, str, cw.IMetric, float, cw.ComparisonOperator, int]] = [
            (
                "DeadLetterQueueNotEmpty",
                "Jobs are in the DLQ: inspect with `jobs dlq peek`, fix, then `jobs dlq redrive`",
                self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=one_minute, statistic="Maximum"
                ),
                settings.alarm_dlq_depth,
                cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                1,
            ),
            (
                "OldestMessageAge",
                "Jobs are waiting too long: is the worker paused (`jobs stats` shows it; `jobs resume`), throttled "
                "(raise max_concurrency), or failing (`jobs logs --since 1h`)?",
                self.queue.metric_approximate_age_of_oldest_message(period=one_minute, statistic="Maximum"),
                settings.alarm_oldest_message_seconds,
                at_least,
                5,
            ),
            (
                "WorkerErrors",
                "The worker function failed: a settings error (one line in `jobs logs --since 1h`), the database "
                "unreachable (the batch went back to the queue, nothing is lost: check the database and its secret), "
                "or a bug (the log has the traceback)",
                self.worker.metric_errors(period=five_minutes, statistic="Sum"),
                1,
                at_least,
                1,
            ),
            (
                "WorkerThrottles",
                "Invocations were throttled: raise reserved_concurrency (or the account's Lambda quota) or lower "
                "max_concurrency; the worker requeues before SQS's redrive, and `jobs stats` shows the backlog",
                self.worker.metric_throttles(period=five_minutes, statistic="Sum"),
                1,
                at_least,
                1,
            ),
            (
                "SweeperErrors",
                "The sweeper failed: unsent jobs are not relayed and history is not pruned; read "
                "`jobs logs --log-group <SweeperLogGroupName output> --since 1h`",
                self.sweeper.metric_errors(period=Duration.minutes(15), statistic="Sum"),
                1,
                at_least,
                1,
            ),
            (
                "DatabaseUnavailable",
                "Jobs could not reach the database, or its secret is missing or empty: check the database, the "
                "pooler and the secret; the jobs wait in the queue (`jobs stats`) and nothing is lost",
                self._worker_metric("JobsUnavailable"),
                1,
                at_least,
                1,
            ),
            (
                "WorkerRecordErrors",
                "The worker itself failed on jobs (the DLQ unreachable, or a bug): the messages went back to the "
                "queue; read `jobs logs --since 1h` for the error",
                self._worker_metric("JobsErrored"),
                1,
                at_least,
                1,
            ),
        ]
        action = cw_actions.SnsAction(self.topic)
        alarms = []
        for alarm_id, description, metric, threshold, comparison, periods in specs:
            alarm = cw.Alarm(
                self.scope,
                alarm_id,
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                comparison_operator=comparison,
                evaluation_periods=periods,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            alarms.append(alarm)
        return alarms

    def _worker_metric(self, name: str) -> cw.Metric:
        """A worker EMF metric summed over job types (the worker also emits it by `Service` alone)."""
        return cw.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"Service": self.settings.stack_name},
            statistic="Sum",
            period=Duration.minutes(5),
        )

    def _dashboard(self, settings: Settings) -> cw.Dashboard:
        def job_metric(name: str, statistic: str = "Sum") -> cw.MathExpression:
            expression = (
                f'SEARCH(\'{{{METRICS_NAMESPACE},Service,JobType}} MetricName="{name}" '
                f"Service=\"{settings.stack_name}\"', '{statistic}', 300)"
            )
            return cw.MathExpression(expression=expression, label=name, period=Duration.minutes(5))

        five = Duration.minutes(5)
        dashboard = cw.Dashboard(self.scope, "Dashboard", dashboard_name=f"{settings.stack_name}-jobs")
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Queue depth",
                left=[
                    self.queue.metric_approximate_number_of_messages_visible(period=five),
                    self.queue.metric_approximate_number_of_messages_not_visible(period=five),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Oldest message age (s)",
                left=[self.queue.metric_approximate_age_of_oldest_message(period=five)],
                width=8,
            ),
            cw.GraphWidget(
                title="DLQ depth",
                left=[self.dead_letter_queue.metric_approximate_number_of_messages_visible(period=five)],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Invocations and errors",
                left=[self.worker.metric_invocations(period=five), self.worker.metric_errors(period=five)],
                right=[self.worker.metric_throttles(period=five)],
                width=8,
            ),
            cw.GraphWidget(
                title="Duration (ms)",
                left=[
                    self.worker.metric_duration(period=five, statistic="p50"),
                    self.worker.metric_duration(period=five, statistic="p99"),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Concurrency",
                left=[self.worker.metric("ConcurrentExecutions", statistic="Maximum", period=five)],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Jobs succeeded / failed by type",
                left=[job_metric("JobsSucceeded")],
                right=[job_metric("JobsFailed")],
                width=8,
            ),
            cw.GraphWidget(
                title="Jobs retried / dead-lettered by type",
                left=[job_metric("JobsRetried")],
                right=[job_metric("JobsDeadLettered")],
                width=8,
            ),
            cw.GraphWidget(title="Job duration p99 by type (ms)", left=[job_metric("JobDuration", "p99")], width=8),
        )
        return dashboard
