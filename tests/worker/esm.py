"""Test helpers that play the Lambda side: SQS records shaped as Lambda delivers them, and a context."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from db import Queue


@dataclass
class FakeLambdaContext:
    """`get_remaining_time_in_millis()` counts down from `timeout_ms` like the real one."""

    timeout_ms: int = 60_000
    aws_request_id: str = "test-request"
    function_name: str = "jobs-worker"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(int(self.timeout_ms - (time.monotonic() - self._started) * 1000), 0)


def to_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message as ReceiveMessage returns it → the record shape of a Lambda SQS event."""
    attributes = {
        name: {
            "stringValue": attr.get("StringValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": attr["DataType"],
        }
        for name, attr in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


def receive_event(queue: Queue, max_messages: int = 10) -> dict[str, Any]:
    """Receive like the event source mapping does and build the event the function gets."""
    arn = queue.client.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    messages = queue.client.receive_message(
        QueueUrl=queue.url,
        MaxNumberOfMessages=max_messages,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    return {"Records": [to_record(m, arn) for m in messages]}


def acknowledge(queue: Queue, event: dict[str, Any], response: dict[str, Any]) -> None:
    """What the event source mapping does with a partial batch response: delete the records not listed."""
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    for record in event["Records"]:
        if record["messageId"] not in failed:
            queue.client.delete_message(QueueUrl=queue.url, ReceiptHandle=record["receiptHandle"])


def drain(queue: Queue) -> list[dict[str, Any]]:
    """Every visible message, with attributes (and they stay invisible for a minute)."""
    out: list[dict[str, Any]] = []
    while True:
        got = queue.client.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
        ).get("Messages", [])
        if not got:
            return out
        out.extend(got)
