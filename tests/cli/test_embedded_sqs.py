"""The embedded SQS keeps SQS's receive rule: a received message is hidden from every other receiver for
its visibility timeout ("Amazon SQS sets a visibility timeout, a period of time during which Amazon SQS
prevents all consumers from receiving and processing the message",
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html).
moto alone breaks it under concurrent receives; `jobstack local` runs several receivers at once."""

from __future__ import annotations

import collections
import threading
from typing import Any

import boto3
import pytest

from cli.local.embedded import start_sqs

pytestmark = pytest.mark.integration


def test_concurrent_receivers_never_get_the_same_message_twice() -> None:
    embedded = start_sqs()
    try:
        sqs = boto3.client("sqs", endpoint_url=embedded.endpoint_url, region_name="us-east-1")
        url = sqs.create_queue(QueueName="race", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
        for start in range(0, 300, 10):
            sqs.send_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(start + i)} for i in range(10)]
            )
        seen: list[str] = []
        lock = threading.Lock()

        def receive() -> None:
            client: Any = boto3.client("sqs", endpoint_url=embedded.endpoint_url, region_name="us-east-1")
            while True:
                got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
                bodies = [m["Body"] for m in got.get("Messages", [])]
                if not bodies:
                    return
                with lock:
                    seen.extend(bodies)

        threads = [threading.Thread(target=receive) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        embedded.stop()
    twice = [body for body, n in collections.Counter(seen).items() if n > 1]
    assert twice == [] and len(seen) == 300
