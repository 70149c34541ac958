"""The one way the tests build a queue and its dead-letter queue, as the stack does: redrive after
`max_receive_count` receives, a FIFO queue's DLQ FIFO too (SQS's rule), any other attributes given."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from cli.local.embedded import EmbeddedSqs, start_sqs
from db import Queue


def queue_pair(
    sqs: Any,
    name: str,
    *,
    fifo: bool = False,
    max_receive_count: int = 5,
    dlq_name: str | None = None,
    **attributes: str,
) -> tuple[Queue, Queue]:
    """(queue, dlq) named `name` and `dlq_name` (default `<name>-dlq`), `.fifo` added for a FIFO pair;
    `attributes` are SQS's (VisibilityTimeout="30", MessageRetentionPeriod=...)."""
    suffix = ".fifo" if fifo else ""
    fifo_attributes = {"FifoQueue": "true"} if fifo else {}
    dlq_url = sqs.create_queue(QueueName=(dlq_name or f"{name}-dlq") + suffix, Attributes=fifo_attributes)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
    url = sqs.create_queue(
        QueueName=name + suffix, Attributes={**fifo_attributes, **attributes, "RedrivePolicy": redrive}
    )["QueueUrl"]
    return Queue(sqs, url), Queue(sqs, dlq_url)


@contextmanager
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedSqs]:
    """A moto server on a free port, for what another process must reach too (a child worker, the CLI's own
    clients): local credentials and region in this process's environment, stopped at the end."""
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    server = start_sqs()
    try:
        yield server
    finally:
        server.stop()


def moto_mapping(queue: Queue, function: str = "worker", region: str = "us-east-1") -> str:
    """A Lambda function (never invoked: moto runs none) and its event source mapping on `queue`, as a deployed
    pool has; the mapping's id."""
    import boto3

    from tests.support.moto_stacks import moto_function

    role = boto3.client("iam", region_name=region).create_role(RoleName=function, AssumeRolePolicyDocument="{}")
    moto_function(function, role["Role"]["Arn"])
    arn = queue.client.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lambda_ = boto3.client("lambda", region_name=region)
    return str(lambda_.create_event_source_mapping(EventSourceArn=arn, FunctionName=function)["UUID"])
