"""The one way the tests build a queue and its dead-letter queue, as the stack does: redrive after
`max_receive_count` receives, a FIFO queue's DLQ FIFO too (SQS's rule), any other attributes given."""

from __future__ import annotations

import json
from typing import Any

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
