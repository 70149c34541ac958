"""`Jobs`: the reusable construct. A queue with redrive, its DLQ, the worker and sweeper functions, scoped
IAM, and (stacks/monitoring.py) alarms to SNS and a dashboard. Drop it into any stack; `JobsStack` is a thin
stack around it.

Secure by default: both queues encrypted (SQS-managed keys, or a customer-managed KMS key when settings
ask), TLS-only policies on both queues and the topic, no managed policies and no wildcard actions on the
functions' roles, the database URL in Secrets Manager (never in environment variables), and a DLQ that only
the main queue may redrive into.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks import nag
from stacks.function_network import FunctionNetwork, function_network
from stacks.monitoring import Monitoring
from stacks.scheduled_jobs import ScheduledJobs
from stacks.settings import DLQ_RETENTION_DAYS, Settings
from stacks.worker_code import RUNTIME, RUNTIME_REASON, lambda_architecture, worker_code

SWEEPER_TIMEOUT_SECONDS = 120
#: What sending to or receiving from a queue under a KMS key takes: SQS asks KMS for a data key to send
#: (GenerateDataKey) and to check a reused one or read a message (Decrypt). Nothing else of KMS.
KEY_USE_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]


class Jobs(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, code: lambda_.Code | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        stack = Stack.of(self)
        removal = RemovalPolicy.RETAIN if settings.removal_policy == "retain" else RemovalPolicy.DESTROY
        code = code or worker_code(settings.architecture)
        self.network: FunctionNetwork | None = function_network(self, settings)

        # Queues. Named, so the DLQ's redrive-allow policy can name the main queue without a cycle.
        main_queue_arn = stack.format_arn(service="sqs", resource=settings.queue_name)
        self.queue_key: kms.IKey | None = self._queue_key(settings, removal)
        encryption: dict[str, Any] = (
            {"encryption": sqs.QueueEncryption.KMS, "encryption_master_key": self.queue_key,
             "data_key_reuse": Duration.minutes(5)}  # SQS's default: one KMS call per 5 minutes per caller
            if self.queue_key
            else {"encryption": sqs.QueueEncryption.SQS_MANAGED}
        )  # fmt: skip
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=settings.dlq_name,
            retention_period=Duration.days(DLQ_RETENTION_DAYS),
            enforce_ssl=True,
            **encryption,
            removal_policy=removal,
        )
        dlq_resource = self.dead_letter_queue.node.default_child
        assert isinstance(dlq_resource, sqs.CfnQueue)
        dlq_resource.redrive_allow_policy = {"redrivePermission": "byQueue", "sourceQueueArns": [main_queue_arn]}
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=settings.queue_name,
            enforce_ssl=True,
            **encryption,
            retention_period=Duration.days(settings.retention_days),
            visibility_timeout=Duration.seconds(settings.visibility_timeout_seconds),
            receive_message_wait_time=Duration.seconds(20),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=settings.max_receive_count, queue=self.dead_letter_queue
            ),
            removal_policy=removal,
        )

        # The database URL lives in Secrets Manager; the functions get only its ARN.
        if settings.database_secret_arn:
            self.database_secret = secretsmanager.Secret.from_secret_complete_arn(
                self, "DatabaseSecret", settings.database_secret_arn
            )
        else:
            created = secretsmanager.Secret(
                self,
                "DatabaseSecret",
                description=f"{settings.stack_name}: the worker's database URL (put the pooler URL here)",
                removal_policy=removal,
            )
            cfn_secret = created.node.default_child
            assert isinstance(cfn_secret, secretsmanager.CfnSecret)
            cfn_secret.add_property_deletion_override("GenerateSecretString")  # an empty secret to fill in
            nag.acknowledge(
                created,
                "AwsSolutions-SMG4",
                "The secret holds an external database URL whose password rotation the database owner controls; "
                "a rotation Lambda here could not change it.",
            )
            self.database_secret = created

        common_env = {
            "QUEUE_URL": self.queue.queue_url,
            "DLQ_URL": self.dead_letter_queue.queue_url,
            "DATABASE_SECRET_ARN": self.database_secret.secret_arn,
            "LOG_LEVEL": settings.log_level,
            "JOB_STALE_AFTER_SECONDS": str(settings.stale_after_seconds),
            "JOB_FUNCTION_TIMEOUT_SECONDS": str(settings.timeout_seconds),
            "JOB_MAX_RECEIVE_COUNT": str(settings.max_receive_count),
            "SWEEP_LOST_AFTER_SECONDS": str(settings.sweep_lost_after_seconds),
            "SWEEP_EXPIRED_AFTER_SECONDS": str(settings.sweep_expired_after_seconds),
            "PRUNE_COMPLETED_AFTER_DAYS": str(settings.completed_retention_days),
            "PRUNE_FAILED_AFTER_DAYS": str(settings.failed_retention_days),
            "JOBSTACK_SERVICE": settings.stack_name,
            "DATABASE_SSLMODE": settings.database_sslmode,
            **({"DATABASE_SSLROOTCERT": settings.database_sslrootcert} if settings.database_sslrootcert else {}),
        }
        self.worker, self.worker_log_group = self._function(
            "Worker",
            handler="worker.handler.handler",
            description="Runs background jobs from the queue",
            code=code,
            timeout=settings.timeout_seconds,
            memory=settings.memory_mb,
            environment=common_env,
            reserved_concurrency=settings.reserved_concurrency,
            removal=removal,
            snapstart=settings.snapstart,
        )
        self.sweeper, self.sweeper_log_group = self._function(
            "Sweeper",
            handler="worker.sweeper.handler",
            description="Re-sends unsent and abandoned jobs; marks exhausted ones failed",
            code=code,
            timeout=SWEEPER_TIMEOUT_SECONDS,
            memory=256,
            environment=common_env,
            reserved_concurrency=1,  # one sweep at a time
            removal=removal,
            retry_attempts=0,  # invoked asynchronously by its schedule: the next run is the retry
        )

        # Periodic jobs (cdk.json `schedules`): one small publishing function, only when there are some, so an
        # environment without schedules has none of it.
        publishers = [self.sweeper]
        self.scheduled: lambda_.Function | None = None
        if settings.schedules:
            self.scheduled, _ = self._function(
                "Scheduled",
                handler="worker.scheduled.handler",
                description="Publishes the jobs of the environment's schedules, once per fire time",
                code=code,
                timeout=30,
                memory=256,
                environment=common_env,
                reserved_concurrency=None,
                removal=removal,
            )
            publishers.append(self.scheduled)
            ScheduledJobs(self, "Schedules", schedules=settings.schedules, target=self.scheduled)

        # Least privilege: exact actions on exact ARNs.
        self.worker.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ],
                resources=[self.queue.queue_arn],
            )
        )
        # SendMessage: dead letters with their reason, and fresh copies of returned messages near the
        # receive limit (worker/batch.py) so SQS's redrive does not take a job before its attempts are used.
        self.worker.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"], resources=[self.dead_letter_queue.queue_arn, self.queue.queue_arn]
            )
        )
        for publisher in publishers:
            publisher.add_to_role_policy(
                iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.queue.queue_arn])
            )
        for function in (self.worker, *publishers):
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue"], resources=[self.database_secret.secret_arn]
                )
            )
            for statement in self._key_use():
                function.add_to_role_policy(statement)
            if settings.database_secret_kms_key_arn:  # a user's secret under their own key
                function.add_to_role_policy(
                    iam.PolicyStatement(
                        actions=["kms:Decrypt"],
                        resources=[settings.database_secret_kms_key_arn],
                        conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"}},
                    )
                )
        self._grant_buckets(settings)

        self.event_source = sources.SqsEventSource(
            self.queue,
            batch_size=settings.batch_size,
            max_batching_window=Duration.seconds(settings.max_batching_window_seconds)
            if settings.max_batching_window_seconds
            else None,
            report_batch_item_failures=True,
            max_concurrency=settings.max_concurrency,
        )
        # With SnapStart, only published versions start from a snapshot: the queue invokes the `live` alias
        # of the newest version (each deploy with changed code or settings publishes one).
        self.worker_target: lambda_.IFunction = self.worker
        if settings.snapstart:
            self.worker_target = lambda_.Alias(
                self, "WorkerLive", alias_name="live", version=self.worker.current_version
            )
        self.worker_target.add_event_source(self.event_source)

        self.schedule = events.Rule(
            self,
            "SweepSchedule",
            description=f"Runs the {settings.stack_name} sweeper",
            schedule=events.Schedule.rate(Duration.minutes(settings.sweep_interval_minutes)),
            targets=[targets.LambdaFunction(self.sweeper, retry_attempts=0)],
        )

        # A managed policy the web app's role or user attaches to publish jobs.
        self.publisher_policy = iam.ManagedPolicy(
            self,
            "PublisherPolicy",
            description=f"Publish jobs to {settings.queue_name}",
            statements=[
                iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.queue.queue_arn]),
                *self._key_use(),
            ],
        )

        self.monitoring = Monitoring(
            self, settings=settings, queue=self.queue, dead_letter_queue=self.dead_letter_queue,
            worker=self.worker, sweeper=self.sweeper,
        )  # fmt: skip
        self.alarm_topic, self.alarms, self.dashboard = (
            self.monitoring.topic,
            self.monitoring.alarms,
            self.monitoring.dashboard,
        )
        self._outputs()

    # -- helpers -------------------------------------------------------------------------------------

    def _queue_key(self, settings: Settings, removal: RemovalPolicy) -> kms.IKey | None:
        if settings.queue_encryption != "kms":
            return None
        if settings.queue_kms_key_arn:
            return kms.Key.from_key_arn(self, "QueueKey", settings.queue_kms_key_arn)
        return kms.Key(
            self,
            "QueueKey",
            description=f"{settings.stack_name}: encrypts the job queue and its dead-letter queue",
            enable_key_rotation=True,
            removal_policy=removal,
        )

    def _key_use(self) -> list[iam.PolicyStatement]:
        if self.queue_key is None:
            return []
        return [iam.PolicyStatement(actions=KEY_USE_ACTIONS, resources=[self.queue_key.key_arn])]

    def _function(
        self,
        name: str,
        *,
        handler: str,
        description: str,
        code: lambda_.Code,
        timeout: int,
        memory: int,
        environment: dict[str, str],
        reserved_concurrency: int | None,
        removal: RemovalPolicy,
        retry_attempts: int | None = None,
        snapstart: bool = False,
    ) -> tuple[lambda_.Function, logs.LogGroup]:
        """One way to build a function: its own log group with retention, its own role with inline
        policies only (no AWSLambdaBasicExecutionRole), JSON logs."""
        log_group = logs.LogGroup(
            self,
            f"{name}Logs",
            retention=_retention(self.settings.log_retention_days),
            removal_policy=removal,
        )
        role = iam.Role(
            self, f"{name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=description
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[f"{log_group.log_group_arn}"]
            )
        )
        if self.network:
            self.network.grant_interfaces(role)
        function = lambda_.Function(
            self,
            name,
            runtime=RUNTIME,
            architecture=lambda_architecture(self.settings.architecture),
            handler=handler,
            code=code,
            description=f"{self.settings.stack_name}: {description}",
            timeout=Duration.seconds(timeout),
            memory_size=memory,
            environment=environment,
            reserved_concurrent_executions=reserved_concurrency,
            retry_attempts=retry_attempts,
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            # Lambda's runtime sets the root logger to this level: DEBUG everywhere would let every library's
            # DEBUG lines out (botocore logs whole responses). The environment's log_level, nothing lower.
            application_log_level_v2=getattr(lambda_.ApplicationLogLevel, _LAMBDA_LEVEL[self.settings.log_level]),
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            params_and_secrets=_secrets_extension() if self.settings.secrets_extension else None,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snapstart else None,
            **(self.network.function_props() if self.network else {}),
        )
        nag.acknowledge(function, "AwsSolutions-L1", RUNTIME_REASON)
        return function, log_group

    def _grant_buckets(self, settings: Settings) -> None:
        for bucket in settings.s3_read_buckets:
            self.worker.add_to_role_policy(
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"arn:{Aws.PARTITION}:s3:::{bucket}/*"])
            )
        for bucket in settings.s3_write_buckets:
            self.worker.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    resources=[f"arn:{Aws.PARTITION}:s3:::{bucket}/*"],
                )
            )
        buckets = sorted(set(settings.s3_read_buckets) | set(settings.s3_write_buckets))
        if buckets:
            self.worker.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"], resources=[f"arn:{Aws.PARTITION}:s3:::{b}" for b in buckets]
                )
            )
            assert self.worker.role is not None
            for bucket in buckets:
                nag.acknowledge(
                    self.worker.role,
                    f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{bucket}/*]",
                    f"Objects in {bucket} have runtime names; the grant is limited to that bucket, named in settings.",
                )

    def _outputs(self) -> None:
        outputs = {
            "QueueUrl": self.queue.queue_url,
            "QueueArn": self.queue.queue_arn,
            "DeadLetterQueueUrl": self.dead_letter_queue.queue_url,
            "WorkerFunctionName": self.worker.function_name,
            "SweeperFunctionName": self.sweeper.function_name,
            "EventSourceMappingId": self.event_source.event_source_mapping_id,
            "PublisherPolicyArn": self.publisher_policy.managed_policy_arn,
            "AlarmTopicArn": self.alarm_topic.topic_arn,
            "DatabaseSecretArn": self.database_secret.secret_arn,
            # The functions write to their own LogGroup resources (LoggingConfig), not /aws/lambda/<name>.
            "WorkerLogGroupName": self.worker_log_group.log_group_name,
            "SweeperLogGroupName": self.sweeper_log_group.log_group_name,
        }
        if self.queue_key:
            outputs["QueueKeyArn"] = self.queue_key.key_arn
        if self.network and self.network.created_security_group:
            outputs["FunctionsSecurityGroupId"] = self.network.created_security_group.security_group_id
        for key, value in outputs.items():
            CfnOutput(Stack.of(self), key, value=value)

    def grant_publish(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let `grantee` (the web app's role) publish jobs: SendMessage on the main queue, and the queue's
        KMS key if it has one; nothing else."""
        grant = iam.Grant.add_to_principal(
            grantee=grantee, actions=["sqs:SendMessage"], resource_arns=[self.queue.queue_arn]
        )
        if self.queue_key:
            grant = grant.combine(
                iam.Grant.add_to_principal(
                    grantee=grantee, actions=KEY_USE_ACTIONS, resource_arns=[self.queue_key.key_arn]
                )
            )
        return grant


_LAMBDA_LEVEL = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARN", "ERROR": "ERROR"}
_RETENTION = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS",
    1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}  # fmt: skip


def _retention(days: int) -> logs.RetentionDays:
    return getattr(logs.RetentionDays, _RETENTION[days])  # type: ignore[no-any-return]


def _secrets_extension() -> lambda_.ParamsAndSecretsLayerVersion:
    """AWS's Parameters and Secrets Lambda Extension, the newest version aws-cdk-lib maps per region. It
    calls Secrets Manager with the function's own role (the same GetSecretValue statement). Its cache lives
    at most 300 s (its maximum); refused credentials bypass it (worker/secret_sources.py)."""
    return lambda_.ParamsAndSecretsLayerVersion.from_version(
        lambda_.ParamsAndSecretsVersions.V1_0_103,
        cache_size=10,
        secrets_manager_ttl=Duration.seconds(300),
        log_level=lambda_.ParamsAndSecretsLogLevel.WARN,
    )
