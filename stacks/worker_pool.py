"""One worker pool's resources (stacks/pools.py): its queue with redrive, its DLQ, its worker function and
the event source mapping between them, and the worker's grants on exactly those two queues.

Not a construct of its own: the `Jobs` construct passes the scope, itself for the default pool (so its
logical ids stay those of the single-queue stack, and a deployed stack keeps its queues) and a child
`Pool<Name>` for the others.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.contract import WorkerQueues, worker_environment
from stacks.function_network import FunctionNetwork
from stacks.functions import FunctionSpec, build_function
from stacks.pools import Pool
from stacks.settings import DLQ_RETENTION_DAYS

_THROUGHPUT = {"perQueue": "PER_QUEUE", "perMessageGroupId": "PER_MESSAGE_GROUP_ID"}
_DEDUPLICATION = {"queue": "QUEUE", "messageGroup": "MESSAGE_GROUP"}


class WorkerPool:
    def __init__(
        self,
        scope: Construct,
        *,
        pool: Pool,
        code: lambda_.Code,
        queue_key: kms.IKey | None,
        secret_arn: str,
        removal: RemovalPolicy,
        network: FunctionNetwork | None,
    ) -> None:
        self.pool, self.scope = pool, scope
        s = pool.settings
        # Named, so the DLQ's redrive-allow policy can name the main queue without a cycle.
        main_queue_arn = Stack.of(scope).format_arn(service="sqs", resource=pool.queue_name)
        encryption: dict[str, Any] = (
            {"encryption": sqs.QueueEncryption.KMS, "encryption_master_key": queue_key,
             "data_key_reuse": Duration.minutes(5)}  # SQS's default: one KMS call per 5 minutes per caller
            if queue_key
            else {"encryption": sqs.QueueEncryption.SQS_MANAGED}
        )  # fmt: skip
        fifo: dict[str, Any] = (
            {
                "fifo": True,
                "content_based_deduplication": False,  # the job id deduplicates; equal payloads are two jobs
                "fifo_throughput_limit": getattr(sqs.FifoThroughputLimit, _THROUGHPUT[pool.fifo_throughput_limit]),
                "deduplication_scope": getattr(sqs.DeduplicationScope, _DEDUPLICATION[pool.deduplication_scope]),
            }
            if pool.fifo
            else {}
        )
        self.dead_letter_queue = sqs.Queue(
            scope,
            "DeadLetterQueue",
            queue_name=pool.dlq_name,
            retention_period=Duration.days(DLQ_RETENTION_DAYS),
            enforce_ssl=True,
            **encryption,
            **fifo,  # a FIFO queue's DLQ must be FIFO too
            removal_policy=removal,
        )
        dlq_resource = self.dead_letter_queue.node.default_child
        assert isinstance(dlq_resource, sqs.CfnQueue)
        dlq_resource.redrive_allow_policy = {"redrivePermission": "byQueue", "sourceQueueArns": [main_queue_arn]}
        self.queue = sqs.Queue(
            scope,
            "Queue",
            queue_name=pool.queue_name,
            enforce_ssl=True,
            **encryption,
            **fifo,
            retention_period=Duration.days(s.retention_days),
            visibility_timeout=Duration.seconds(s.visibility_timeout_seconds),
            receive_message_wait_time=Duration.seconds(20),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=s.max_receive_count, queue=self.dead_letter_queue),
            removal_policy=removal,
        )
        self.environment = worker_environment(
            pool,
            WorkerQueues(self.queue.queue_url, self.dead_letter_queue.queue_url),
            database_secret_arn=secret_arn,
        )
        self.worker, self.log_group = build_function(
            scope,
            FunctionSpec(
                name="Worker",
                handler="worker.handler.handler",
                description="Runs background jobs from the queue"
                if pool.is_default and not pool.types
                else f"Runs the {pool.name} pool's jobs ({pool.types_summary(budget=160)})",
                timeout=s.timeout_seconds,
                memory=s.memory_mb,
                environment=self.environment,
                reserved_concurrency=s.reserved_concurrency,
                snapstart=s.snapstart,
            ),
            settings=s,
            code=code,
            removal=removal,
            network=network,
        )
        self.event_source = sources.SqsEventSource(
            self.queue,
            batch_size=s.batch_size,
            max_batching_window=Duration.seconds(s.max_batching_window_seconds)
            if s.max_batching_window_seconds
            else None,
            report_batch_item_failures=True,
            max_concurrency=s.max_concurrency,
        )
        # With SnapStart, only published versions start from a snapshot: the queue invokes the `live` alias
        # of the newest version (each deploy with changed code or settings publishes one).
        self.target: lambda_.IFunction = self.worker
        if s.snapstart:
            self.target = lambda_.Alias(scope, "WorkerLive", alias_name="live", version=self.worker.current_version)

    def grant_queues(self) -> None:
        """The worker's own queue and DLQ, exact actions on exact ARNs."""
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

    def connect(self) -> None:
        """The event source mapping, added last as it always was (its logical id follows the queue's)."""
        self.target.add_event_source(self.event_source)
