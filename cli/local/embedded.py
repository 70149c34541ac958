"""The embedded default for `jobstack local`: a moto SQS server on a free loopback port, with the queue and
DLQ created from JobsStack-dev's own settings (read from the same settings object, not copied), and a
SQLite file for the database. No AWS account, no Docker, nothing to install."""

from __future__ import annotations

import json
import os
import threading
import time
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


def keep_one_receiver_per_message() -> None:
    """Make moto's SQS keep SQS's rule that a received message stays hidden from other receivers for its
    visibility timeout.

    moto checks a message's visibility and marks it received without a lock, so two receivers polling at
    once (`jobstack local`'s concurrent slots, the reliability tests' runners) can both take one message: a
    duplicate that SQS would not produce within the visibility timeout. Each scan-and-mark runs under one
    lock here; the long poll waits outside it, so a poll never blocks another queue's receivers.
    Idempotent: it wraps moto's method once per process.
    """
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend.receive_message, "jobstack_one_receiver", False):
        return
    scan = SQSBackend.receive_message
    lock = threading.Lock()

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:
        deadline = time.monotonic() + wait_seconds_timeout
        while True:
            with lock:
                received = scan(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            if received or time.monotonic() >= deadline:
                return received
            self.get_queue(queue_name).wait_for_messages(1)

    receive_message.jobstack_one_receiver = True  # type: ignore[attr-defined]
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]


def start_sqs() -> EmbeddedSqs:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

    keep_one_receiver_per_message()
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
