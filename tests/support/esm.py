"""Test helpers that play the Lambda side: SQS records shaped as Lambda delivers them, and a context."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cli.local.sqs_event import queue_arn, to_record
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


def receive_event(queue: Queue, max_messages: int = 10) -> dict[str, Any]:
    """Receive like the event source mapping does and build the event the function gets."""
    arn = queue_arn(queue.client, queue.url)
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


def deliver(
    queue: Queue, invoke: Callable[[dict[str, Any], Any], dict[str, Any]], context: Any = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One event source mapping poll, the one way the tests deliver: receive a batch, invoke the function
    with it, delete what the response acknowledged. Returns (event, response)."""
    event = receive_event(queue)
    assert event["Records"], "expected a message to deliver"
    response = invoke(event, context or FakeLambdaContext())
    acknowledge(queue, event, response)
    return event, response


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
