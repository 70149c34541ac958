"""`Jobs`: the reusable construct. Per worker pool (stacks/worker_pool.py) a queue with redrive, its DLQ and
a worker function; one sweeper, scoped IAM, and (stacks/monitoring.py) alarms to SNS and a dashboard. Drop
it into any stack; `JobsStack` is a thin stack around it.

Secure by default: both queues encrypted (SQS-managed keys, or a customer-managed KMS key when settings
ask), TLS-only policies on both queues and the topic, no managed policies and no wildcard actions on the
functions' roles, the database URL in Secrets Manager (never in environment variables), and a DLQ that only
the main queue may redrive into.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks import deploy_regions, nag
from stacks.contract import publisher_environment
from stacks.function_network import FunctionNetwork, function_network
from stacks.functions import FunctionSpec, build_function
from stacks.limits import check_limits
from stacks.monitoring import Monitoring
from stacks.periodic_jobs import PeriodicJobs
from stacks.pools import PoolSpec, output_key, route_document, sweep_windows
from stacks.settings import DLQ_RETENTION_DAYS, Settings, with_pools
from stacks.worker_code import worker_code
from stacks.worker_pool import WorkerPool
from worker.contract import Env

SWEEPER_TIMEOUT_SECONDS = 120
#: What sending to or receiving from a queue under a KMS key takes: SQS asks KMS for a data key to send
#: (GenerateDataKey) and to check a reused one or read a message (Decrypt). Nothing else of KMS.
KEY_USE_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]


class Jobs(Construct):
    """The whole job system for one environment. Reusable in your own stack:

        jobs = Jobs(self, "Jobs", settings=load_settings(context, "dev"),
                    pools={"video": {"types": ["video.transcode"], "timeout_seconds": 900}})
        jobs.grant_publish(web_app_role)

    Keyword-only: `settings` (stacks/settings.py), `pools` (replaces the settings' own, checked by the same
    rules: SettingsError in one line), `code` (replaces the worker asset; tests pass a small inline one).
    `pools` on the construct holds each pool's resources by name (stacks/worker_pool.py); `queue`,
    `dead_letter_queue`, `worker` (and friends) are the default pool's.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        pools: Mapping[str, PoolSpec] | None = None,
        code: lambda_.Code | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if pools is not None:
            settings = with_pools(settings, pools)
        self.settings = settings
        deploy_regions.check_region(Stack.of(self), settings)
        removal = RemovalPolicy.RETAIN if settings.removal_policy == "retain" else RemovalPolicy.DESTROY
        code = code or worker_code(settings.architecture, settings.django)
        self.network: FunctionNetwork | None = function_network(self, settings)
        self.queue_key: kms.IKey | None = self._queue_key(settings, removal)
        self.database_secret = self._database_secret(settings, removal)

        # The default pool's resources sit in this construct itself, where the single-queue stack had them.
        self.pools: dict[str, WorkerPool] = {}
        for pool in settings.all_pools:
            self.pools[pool.name] = WorkerPool(
                self if pool.is_default else Construct(self, pool.construct_prefix),
                pool=pool,
                code=code,
                queue_key=self.queue_key,
                secret_arn=self.database_secret.secret_arn,
                removal=removal,
                network=self.network,
            )
        default = self.pools[settings.default_pool.name]
        self.queue, self.dead_letter_queue = default.queue, default.dead_letter_queue
        self.worker, self.worker_log_group = default.worker, default.log_group
        self.routes = Stack.of(self).to_json_string(
            route_document(settings.all_pools, lambda p: self.pools[p.name].queue.queue_url)
        )
        several = len(self.pools) > 1  # one pool: the sweeper's QUEUE_URL is the whole map, as before pools
        publisher_env = publisher_environment(
            default.environment,
            routes=self.routes if several else None,
            sweep_windows=sweep_windows(settings.all_pools) if several else None,
        )
        self.scheduled, self.schedule_failures, publisher_env = self._scheduled(settings, code, removal, publisher_env)
        self.sweeper, self.sweeper_log_group = self._function(
            FunctionSpec(
                name="Sweeper",
                handler="worker.sweeper.handler",
                description="Re-sends unsent and abandoned jobs; marks exhausted ones failed",
                timeout=SWEEPER_TIMEOUT_SECONDS,
                memory=256,
                environment=publisher_env,
                reserved_concurrency=1,  # one sweep at a time
                retry_attempts=0,  # invoked asynchronously by its schedule: the next run is the retry
            ),
            code,
            removal,
        )

        # Least privilege: exact actions on exact ARNs.
        for worker_pool in self.pools.values():
            worker_pool.grant_queues()
        all_queues = [p.queue.queue_arn for p in self.pools.values()]
        if several:
            # A completion can release a job of any type (a group's callback, a chain's next step: db/workflows.py),
            # whose queue may be another pool's: each worker sends it there itself, right after the commit, so it
            # carries the route map and may send to every pool queue of this stack (no other action, no other ARN).
            for worker_pool in self.pools.values():
                worker_pool.worker.add_environment(Env.ROUTES, self.routes)
                worker_pool.worker.add_environment(Env.SWEEP_WINDOWS, sweep_windows(settings.all_pools))
                others = [p.queue.queue_arn for p in self.pools.values() if p is not worker_pool]
                worker_pool.worker.add_to_role_policy(
                    iam.PolicyStatement(actions=["sqs:SendMessage"], resources=others)
                )
        self.sweeper.add_to_role_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=all_queues))
        if self.schedule_failures:  # the sweeper replays the fires that failed
            self.sweeper.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
                    resources=[self.schedule_failures.queue_arn],
                )
            )
        if self.scheduled:  # only the queues of the pools its schedules' types run in
            scheduled_pools = dict.fromkeys(settings.pool_for_type(s.type).name for s in settings.schedules)
            self.scheduled.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sqs:SendMessage"], resources=[self.pools[p].queue.queue_arn for p in scheduled_pools]
                )
            )
        publishers = [self.sweeper, *([self.scheduled] if self.scheduled else [])]
        for function in (*(p.worker for p in self.pools.values()), *publishers):
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
        for worker_pool in self.pools.values():
            self._grant_buckets(worker_pool.worker, settings)

        for worker_pool in self.pools.values():
            worker_pool.connect()
        self.event_source, self.worker_target = default.event_source, default.target

        self.schedule = events.Rule(
            self,
            "SweepSchedule",
            description=f"Runs the {settings.stack_name} sweeper",
            schedule=events.Schedule.rate(Duration.minutes(settings.sweep_interval_minutes)),
            targets=[targets.LambdaFunction(self.sweeper, retry_attempts=0)],
        )

        # A managed policy the web app's role or user attaches to publish jobs to every pool.
        self.publisher_policy = iam.ManagedPolicy(
            self,
            "PublisherPolicy",
            description=f"Publish jobs to {', '.join(p.queue_name for p in settings.all_pools)}"[:1000],
            statements=[
                iam.PolicyStatement(actions=["sqs:SendMessage"], resources=all_queues),
                *self._key_use(),
            ],
        )

        self.monitoring = Monitoring(
            self,
            settings=settings,
            pools=list(self.pools.values()),
            sweeper=self.sweeper,
            scheduled=self.scheduled,
            schedule_failures=self.schedule_failures,
        )
        self.alarm_topic, self.alarms, self.dashboard = (
            self.monitoring.topic,
            self.monitoring.alarms,
            self.monitoring.dashboard,
        )
        self._outputs()
        check_limits(self)

    # -- helpers -------------------------------------------------------------------------------------

    def _scheduled(
        self, settings: Settings, code: lambda_.Code, removal: RemovalPolicy, publisher_env: dict[str, str]
    ) -> tuple[lambda_.Function | None, sqs.Queue | None, dict[str, str]]:
        """Periodic jobs (cdk.json `schedules`): a small publishing function and its failure queue, only when
        there are some, so an environment without schedules has none of it.

        Scheduler invokes the function asynchronously: a fire whose publish fails (database down, unknown
        type) lands, after Lambda's bounded retries, in the ScheduleFailures queue, as does an invocation
        Scheduler could not make (stacks/periodic_jobs.py). The sweeper replays that queue, so the URL goes
        into the publishers' environment, returned for the sweeper; alarms watch it (stacks/monitoring.py)."""
        if not settings.schedules:
            return None, None, publisher_env
        failures = sqs.Queue(
            self,
            "ScheduleFailures",
            retention_period=Duration.days(DLQ_RETENTION_DAYS),
            enforce_ssl=True,
            removal_policy=removal,
            **(
                {"encryption": sqs.QueueEncryption.KMS, "encryption_master_key": self.queue_key}
                if self.queue_key
                else {"encryption": sqs.QueueEncryption.SQS_MANAGED}
            ),
        )
        nag.acknowledge(
            failures,
            "AwsSolutions-SQS3",
            "This queue is itself where failed scheduled invocations go (Lambda's on-failure destination and "
            "Scheduler's dead-letter queue); the sweeper replays it and an alarm watches its arrivals.",
        )
        publisher_env = publisher_environment(publisher_env, schedule_failures_url=failures.queue_url)
        scheduled, self.scheduled_log_group = self._function(
            FunctionSpec(
                name="Scheduled",
                handler="worker.scheduled.handler",
                description="Publishes the jobs of the environment's schedules, once per fire time",
                timeout=30,
                memory=256,
                environment=publisher_env,
                reserved_concurrency=None,
            ),
            code,
            removal,
        )
        PeriodicJobs(
            self,
            "Schedules",
            schedules=settings.schedules,
            target=scheduled,
            failures=failures,
            key_use=self._key_use(),
        )
        return scheduled, failures, publisher_env

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
        self, spec: FunctionSpec, code: lambda_.Code, removal: RemovalPolicy
    ) -> tuple[lambda_.Function, logs.LogGroup]:
        return build_function(self, spec, settings=self.settings, code=code, removal=removal, network=self.network)

    def _database_secret(self, settings: Settings, removal: RemovalPolicy) -> secretsmanager.ISecret:
        """The database URL lives in Secrets Manager; the functions get only its ARN."""
        if settings.database_secret_arn:
            return secretsmanager.Secret.from_secret_complete_arn(self, "DatabaseSecret", settings.database_secret_arn)
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
        return created

    @staticmethod
    def _grant_buckets(worker: lambda_.Function, settings: Settings) -> None:
        for bucket in settings.s3_read_buckets:
            worker.add_to_role_policy(
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"arn:{Aws.PARTITION}:s3:::{bucket}/*"])
            )
        for bucket in settings.s3_write_buckets:
            worker.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    resources=[f"arn:{Aws.PARTITION}:s3:::{bucket}/*"],
                )
            )
        buckets = sorted(set(settings.s3_read_buckets) | set(settings.s3_write_buckets))
        if buckets:
            worker.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"], resources=[f"arn:{Aws.PARTITION}:s3:::{b}" for b in buckets]
                )
            )
            assert worker.role is not None
            for bucket in buckets:
                nag.acknowledge(
                    worker.role,
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
        for name, worker_pool in self.pools.items():  # the default pool's are the unprefixed ones above
            if not worker_pool.pool.is_default:
                outputs[output_key(name, "QueueUrl")] = worker_pool.queue.queue_url
                outputs[output_key(name, "DeadLetterQueueUrl")] = worker_pool.dead_letter_queue.queue_url
                outputs[output_key(name, "WorkerFunctionName")] = worker_pool.worker.function_name
                outputs[output_key(name, "EventSourceMappingId")] = worker_pool.event_source.event_source_mapping_id
                outputs[output_key(name, "WorkerLogGroupName")] = worker_pool.log_group.log_group_name
        # What a web app's publisher needs, as one value: `jobstack routes --env ENV` prints it to export.
        outputs["Routes"] = self.routes
        if self.schedule_failures:
            outputs["ScheduleFailuresQueueUrl"] = self.schedule_failures.queue_url
            outputs["ScheduledLogGroupName"] = self.scheduled_log_group.log_group_name
        if self.queue_key:
            outputs["QueueKeyArn"] = self.queue_key.key_arn
        if self.network and self.network.created_security_group:
            outputs["FunctionsSecurityGroupId"] = self.network.created_security_group.security_group_id
        for key, value in outputs.items():
            CfnOutput(Stack.of(self), key, value=value)

    def grant_publish(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let `grantee` (the web app's role) publish jobs: SendMessage on every pool's queue, and the
        queues' KMS key if they have one; nothing else."""
        grant = iam.Grant.add_to_principal(
            grantee=grantee, actions=["sqs:SendMessage"], resource_arns=[p.queue.queue_arn for p in self.pools.values()]
        )
        if self.queue_key:
            grant = grant.combine(
                iam.Grant.add_to_principal(
                    grantee=grantee, actions=KEY_USE_ACTIONS, resource_arns=[self.queue_key.key_arn]
                )
            )
        return grant
