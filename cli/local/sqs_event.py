"""SQS messages in the shape Lambda's event source mapping delivers them (used by the local runner and
by tests that play the Lambda side)."""

from __future__ import annotations

from typing import Any


def to_record(message: dict[str, Any], queue_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """A message as ReceiveMessage returns it → one record of a Lambda SQS event."""
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
        "awsRegion": region,
    }


def queue_arn(sqs: Any, queue_url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn
