"""The embedded default for `jobs local`: a moto SQS server on a free loopback port, with the queue and
DLQ created from JobsStack-dev's own settings (read from the same settings object, not copied), and a
SQLite file for the database. No AWS account, no Docker, nothing to install."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from cli.local_ports import free_port
from stacks.pools import Pool
from stacks.settings import DLQ_RETENTION_DAYS

LOCAL_REGION = "us-east-1"


@dataclass
class EmbeddedSqs:
    server: Any
    endpoint_url: str

    def stop(self) -> None:
        self.server.stop()


def start_sqs() -> EmbeddedSqs:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # moto accepts any credentials; set dummy ones so boto3 never looks for real ones.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", LOCAL_REGION)
    return EmbeddedSqs(server=server, endpoint_url=f"http://127.0.0.1:{port}")


def create_queues(sqs: Any, pool: Pool) -> tuple[str, str]:
    """A pool's queue pair as the stack defines it: names, retention, derived visibility, long polling,
    redrive, FIFO with the job id deduplicating."""
    fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "false"} if pool.fifo else {}
    settings = pool.settings
    dlq_url: str = sqs.create_queue(
        QueueName=pool.dlq_name,
        Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_DAYS * 86400), **fifo},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url: str = sqs.create_queue(
        QueueName=pool.queue_name,
        Attributes={
            **fifo,
            "MessageRetentionPeriod": str(settings.retention_days * 86400),
            "VisibilityTimeout": str(settings.visibility_timeout_seconds),
            "ReceiveMessageWaitTimeSeconds": "20",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count}
            ),
        },
    )["QueueUrl"]
    return queue_url, dlq_url
