"""Alarms that reach people, and a dashboard: the Jobs construct's monitoring, apart from what it monitors.

Not a construct of its own: the topic is created in the `Jobs` construct's scope and each pool's alarms in
its pool's scope (the default pool's is the construct itself), so logical ids (and a deployed topic's
confirmed e-mail subscriptions) stay what they were before this module, and pools, existed. One topic, one
dashboard: a row of graphs per pool.

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
from stacks.worker_pool import WorkerPool
from worker.contract import (  # the worker's metrics, named once (worker/contract.py)
    DURATION_METRIC,
    JOB_TYPE_DIMENSION,
    METRIC_NAMES,
    METRICS_NAMESPACE,
    QUEUE_WAIT_METRIC,
    SERVICE_DIMENSION,
)


class Monitoring:
    def __init__(
        self,
        scope: Construct,
        *,
        settings: Settings,
        pools: list[WorkerPool],
        sweeper: lambda_.Function,
        scheduled: lambda_.Function | None = None,
        schedule_failures: sqs.IQueue | None = None,
    ) -> None:
        self.scope, self.settings, self.sweeper = scope, settings, sweeper
        self.topic = sns.Topic(scope, "AlarmTopic", display_name=f"{settings.stack_name} alarms", enforce_ssl=True)
        for email in settings.alarm_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.alarms: list[cw.Alarm] = []
        for pool in pools:
            self.alarms += self._pool_alarms(pool)
        self.alarms.append(self._alarm(scope, *self._sweeper_alarm()))
        if scheduled is not None and schedule_failures is not None:
            self.alarms += [self._alarm(scope, *spec) for spec in self._schedule_alarms(scheduled, schedule_failures)]
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
        self.dashboard = cw.Dashboard(scope, "Dashboard", dashboard_name=f"{settings.stack_name}-jobs")
        for pool in pools:
            self._dashboard_rows(pool)

    def _pool_alarms(self, worker_pool: WorkerPool) -> list[cw.Alarm]:
        """Each alarm: (id, what it means for an operator, metric, threshold, operator, periods). A pool other
        than the default names itself first in each description."""
        pool, queue, dead_letter_queue, worker = (
            worker_pool.pool,
            worker_pool.queue,
            worker_pool.dead_letter_queue,
            worker_pool.worker,
        )
        settings = pool.settings
        at_least = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        one_minute, five_minutes = Duration.minutes(1), Duration.minutes(5)
        specs: list[tuple[str, str, cw.IMetric, float, cw.ComparisonOperator, int]] = [
            (
                "DeadLetterQueueNotEmpty",
                "Jobs are in the DLQ: inspect with `jobstack dlq peek`, fix, then `jobstack dlq redrive`",
                self._held(dead_letter_queue),
                settings.alarm_dlq_depth,
                cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                1,
            ),
            (
                "OldestMessageAge",
                "Jobs are waiting too long: is the worker paused (`jobstack stats` shows it; `jobstack resume`), "
                "throttled (raise max_concurrency), or failing (`jobstack logs --since 1h`)?",
                queue.metric_approximate_age_of_oldest_message(period=one_minute, statistic="Maximum"),
                settings.alarm_oldest_message_seconds,
                at_least,
                5,
            ),
            (
                "WorkerErrors",
                "The worker function failed: a settings error (one line in `jobstack logs --since 1h`), the database "
                "unreachable (the batch went back to the queue, nothing is lost: check the database and its secret), "
                "or a bug (the log has the traceback)",
                worker.metric_errors(period=five_minutes, statistic="Sum"),
                1,
                at_least,
                1,
            ),
            (
                "WorkerThrottles",
                "Invocations were throttled: raise reserved_concurrency (or the account's Lambda quota) or lower "
                "max_concurrency; the worker requeues before SQS's redrive, and `jobstack stats` shows the backlog",
                worker.metric_throttles(period=five_minutes, statistic="Sum"),
                1,
                at_least,
                1,
            ),
            (
                "DatabaseUnavailable",
                "Jobs could not reach the database, or its secret is missing or empty: check the database, the "
                "pooler and the secret; the jobstack wait in the queue (`jobstack stats`) and nothing is lost",
                self._worker_metric(pool.service, METRIC_NAMES["unavailable"]),
                1,
                at_least,
                1,
            ),
            (
                "WorkerRecordErrors",
                "The worker itself failed on jobs (the DLQ unreachable, or a bug): the messages went back to the "
                "queue; read `jobstack logs --since 1h` for the error",
                self._worker_metric(pool.service, METRIC_NAMES["errored"]),
                1,
                at_least,
                1,
            ),
        ]
        specs.insert(1, self._dead_letter_arrivals(dead_letter_queue))
        if settings.alarm_queue_wait_p99_seconds is not None:
            specs.append(self._queue_wait(pool.service, settings.alarm_queue_wait_p99_seconds))
        if not pool.is_default:
            named = f"Pool {pool.name} ({pool.types_summary()}): "
            specs = [(i, named + d, m, t, c, n) for i, d, m, t, c, n in specs]
        return [self._alarm(worker_pool.scope, *spec) for spec in specs]

    @staticmethod
    def _held(queue: sqs.IQueue) -> cw.MathExpression:
        """Every message `queue` holds, visible or not, per minute. `jobstack dlq peek` and `redrive` hold dead
        letters for 60 s and the sweeper's replay holds failed fires up to 120 s: visible alone dips and
        comes back, so an alarm on it would change state (and notify) for nothing; visible + in flight stays
        level. A missing point is an empty queue: SQS publishes these metrics for active queues only, and a
        queue holding messages is active
        (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html),
        so FILL(…, 0) gives the first burst into a DLQ idle for hours the earlier point DIFF needs. Averages:
        the two sums of samples taken together add up to what was held (a Maximum of each could count a
        message twice, once visible and once in flight, in the minute a hold starts)."""
        one_minute = Duration.minutes(1)
        return cw.MathExpression(
            expression="FILL(visible, 0) + FILL(hidden, 0)",
            using_metrics={
                "visible": queue.metric_approximate_number_of_messages_visible(period=one_minute, statistic="Average"),
                "hidden": queue.metric_approximate_number_of_messages_not_visible(
                    period=one_minute, statistic="Average"
                ),
            },
            label="Messages held",
            period=one_minute,
        )

    @classmethod
    def _arrivals(cls, queue: sqs.IQueue) -> cw.MathExpression:
        """Messages that reached `queue` per minute, whatever it already holds. Two sources, because SQS
        counts them apart: NumberOfMessagesSent counts SendMessage calls (the worker's own dead letters,
        Lambda's and Scheduler's failure records), and not the messages SQS's redrive moves to a DLQ after
        maxReceiveCount receives
        (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html);
        those show as a rise of what the queue holds (`_held`: a hold is no arrival). The larger per minute."""
        one_minute = Duration.minutes(1)
        return cw.MathExpression(
            expression="MAX([sent, IF(DIFF(held) > 0, DIFF(held), 0)])",
            using_metrics={
                "sent": queue.metric_number_of_messages_sent(period=one_minute, statistic="Sum"),
                "held": cls._held(queue),
            },
            label="New dead letters",
            period=one_minute,
        )

    @classmethod
    def _dead_letter_arrivals(
        cls, dead_letter_queue: sqs.IQueue
    ) -> tuple[str, str, cw.IMetric, float, cw.ComparisonOperator, int]:
        """New dead letters, whatever is already in the DLQ. An alarm's actions run only when its state
        changes (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-actions),
        and the depth alarm stays in ALARM while `jobstack dlq redrive` leaves messages it must not move (14 days
        at most): later dead letters, even of a new kind, would notify nobody. This one watches arrivals per
        minute and returns to OK after a quiet minute, so each new burst notifies again."""
        return (
            "DeadLetterArrivals",
            "New jobs reached the DLQ in the last minute (notifies for every new burst, even while older dead "
            "letters wait): `jobstack dlq peek` shows their reasons",
            cls._arrivals(dead_letter_queue),
            1,
            cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            1,
        )

    @classmethod
    def _schedule_alarms(
        cls, scheduled: lambda_.Function, failures: sqs.IQueue
    ) -> list[tuple[str, str, cw.IMetric, float, cw.ComparisonOperator, int]]:
        """A fire that could not publish its job: the function's errors (each retry counts), and arrivals in
        the failure queue once Lambda's retries are spent. The sweeper replays the queue; until the cause is
        fixed, the job of that fire does not exist."""
        at_least = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        return [
            (
                "ScheduledErrors",
                "A schedule's fire could not publish its job (database unreachable, or a job type this worker does "
                "not register): Lambda retries twice, then the fire waits in the ScheduleFailures queue; read "
                "`jobstack logs --log-group <ScheduledLogGroupName output> --since 1h`",
                scheduled.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                1,
                at_least,
                1,
            ),
            (
                "ScheduleFailureArrivals",
                "Scheduled fires gave up and wait in the ScheduleFailures queue: the sweeper publishes them again "
                "every run once the cause is fixed (`jobstack doctor` checks the schedules' types; `jobstack logs` has "
                "the error)",
                cls._arrivals(failures),
                1,
                at_least,
                1,
            ),
        ]

    def _sweeper_alarm(self) -> tuple[str, str, cw.IMetric, float, cw.ComparisonOperator, int]:
        return (
            "SweeperErrors",
            "The sweeper failed: unsent jobs are not relayed and history is not pruned; read "
            "`jobstack logs --log-group <SweeperLogGroupName output> --since 1h`",
            self.sweeper.metric_errors(period=Duration.minutes(15), statistic="Sum"),
            1,
            cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            1,
        )

    def _alarm(
        self,
        scope: Construct,
        alarm_id: str,
        description: str,
        metric: cw.IMetric,
        threshold: float,
        comparison: cw.ComparisonOperator,
        periods: int,
    ) -> cw.Alarm:
        alarm = cw.Alarm(
            scope,
            alarm_id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=periods,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        return alarm

    @staticmethod
    def _queue_wait(service: str, seconds: int) -> tuple[str, str, cw.IMetric, float, cw.ComparisonOperator, int]:
        """The p99 of JobQueueWait (a first attempt's publish, or run_at, to claim) by service: the number that
        says a pool needs more concurrency, before OldestMessageAge sees a backlog."""
        return (
            "QueueWaitP99",
            f"The slowest 1% of jobs waited {seconds} s or more from publish to start, for 15 minutes: raise "
            "max_concurrency, or give the slow types a pool of their own; `jobstack stats` shows p50/p95 per type",
            cw.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=QUEUE_WAIT_METRIC,
                dimensions_map={SERVICE_DIMENSION: service},
                statistic="p99",
                period=Duration.minutes(5),
            ),
            seconds * 1000,
            cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            3,
        )

    @staticmethod
    def _worker_metric(service: str, name: str) -> cw.Metric:
        """A worker EMF metric summed over job types (the worker also emits it by `Service` alone)."""
        return cw.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={SERVICE_DIMENSION: service},
            statistic="Sum",
            period=Duration.minutes(5),
        )

    def _dashboard_rows(self, worker_pool: WorkerPool) -> None:
        """Four rows per pool: its queues, its worker, its jobs by type, its queue wait. A pool other than the
        default names itself in each title."""
        pool, queue, dead_letter_queue, worker = (
            worker_pool.pool,
            worker_pool.queue,
            worker_pool.dead_letter_queue,
            worker_pool.worker,
        )
        prefix = "" if pool.is_default else f"{pool.name}: "

        def job_metric(name: str, statistic: str = "Sum") -> cw.MathExpression:
            expression = (
                f'SEARCH(\'{{{METRICS_NAMESPACE},{SERVICE_DIMENSION},{JOB_TYPE_DIMENSION}}} MetricName="{name}" '
                f"{SERVICE_DIMENSION}=\"{pool.service}\"', '{statistic}', 300)"
            )
            return cw.MathExpression(expression=expression, label=name, period=Duration.minutes(5))

        five = Duration.minutes(5)
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title=f"{prefix}Queue depth",
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=five),
                    queue.metric_approximate_number_of_messages_not_visible(period=five),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title=f"{prefix}Oldest message age (s)",
                left=[queue.metric_approximate_age_of_oldest_message(period=five)],
                width=8,
            ),
            cw.GraphWidget(
                title=f"{prefix}DLQ depth",
                left=[dead_letter_queue.metric_approximate_number_of_messages_visible(period=five)],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title=f"{prefix}Invocations and errors",
                left=[worker.metric_invocations(period=five), worker.metric_errors(period=five)],
                right=[worker.metric_throttles(period=five)],
                width=8,
            ),
            cw.GraphWidget(
                title=f"{prefix}Duration (ms)",
                left=[
                    worker.metric_duration(period=five, statistic="p50"),
                    worker.metric_duration(period=five, statistic="p99"),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title=f"{prefix}Concurrency",
                left=[worker.metric("ConcurrentExecutions", statistic="Maximum", period=five)],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title=f"{prefix}Jobs succeeded / failed by type",
                left=[job_metric(METRIC_NAMES["succeeded"])],
                right=[job_metric(METRIC_NAMES["failed"])],
                width=8,
            ),
            cw.GraphWidget(
                title=f"{prefix}Jobs retried / dead-lettered by type",
                left=[job_metric(METRIC_NAMES["retried"])],
                right=[job_metric(METRIC_NAMES["dead_lettered"])],
                width=8,
            ),
            cw.GraphWidget(
                title=f"{prefix}Job duration p99 by type (ms)", left=[job_metric(DURATION_METRIC, "p99")], width=8
            ),
        )
        self.dashboard.add_widgets(  # publish (or run_at) to the first claim: whether the pool needs concurrency
            cw.GraphWidget(
                title=f"{prefix}Queue wait p99 by type (ms)", left=[job_metric(QUEUE_WAIT_METRIC, "p99")], width=12
            ),
            cw.GraphWidget(
                title=f"{prefix}Queue wait, all types (ms)",
                left=[
                    cw.Metric(
                        namespace=METRICS_NAMESPACE,
                        metric_name=QUEUE_WAIT_METRIC,
                        dimensions_map={SERVICE_DIMENSION: pool.service},
                        statistic=statistic,
                        label=statistic,
                        period=five,
                    )
                    for statistic in ("p50", "p99")
                ],
                width=12,
            ),
        )
