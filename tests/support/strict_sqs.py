r"""An SQS client that refuses what real SQS refuses, in front of moto, which checks almost none of it.

The rules, from the SQS API reference (SendMessage, SendMessageBatch, ChangeMessageVisibility,
MessageAttributeValue) and the SQS quotas page:
- a body, and every String (or Number) attribute value, may hold only #x9 | #xA | #xD | #x20-#xD7FF |
  #xE000-#xFFFD | #x10000-#x10FFFF ("InvalidParameterValue ... Invalid characters found");
- a message is at most the queue's MaximumMessageSize (1 MiB at most), counting the body and each
  attribute's name, type and value, and a batch's messages together at most the same;
- at most 10 message attributes; names of 1-256 characters from A-Z a-z 0-9 _ - . , not starting with
  "AWS." or "Amazon.", not starting or ending with a period, no two periods in a row; values not empty;
- a Number attribute is a number; DelaySeconds is 0-900 and FIFO queues take none per message; a FIFO
  message needs a MessageGroupId; a MessageGroupId, on any queue (a standard queue's names the tenant of a fair
  queue: "Amazon SQS fair queues"), is 1-128 alphanumeric characters and punctuation
  (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~: SendMessage, MessageGroupId), which moto does not check;
- a batch has 1-10 entries with distinct Ids; VisibilityTimeout is 0-43200.
Tests wrap their moto client in this, so a worker that would fail in AWS fails here too.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

#: SendMessage's MessageGroupId: alphanumeric characters and punctuation, 1-128 of them.
_GROUP = re.compile(r"[A-Za-z0-9!-/:-@\[-`{-~]{1,128}")
_ALLOWED = re.compile("^[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
MAX_BYTES = 1_048_576


def _refuse(operation: str, message: str, code: str = "InvalidParameterValue") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class StrictSqs:
    def __init__(self, client: Any) -> None:
        self._client = client
        self.refused: list[str] = []  # what this wrapper refused, for tests to assert on

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def send_message(self, **kwargs: Any) -> Any:
        self._check(kwargs["QueueUrl"], kwargs, "SendMessage")
        return self._client.send_message(**kwargs)

    def send_message_batch(self, **kwargs: Any) -> Any:
        entries = kwargs["Entries"]
        self._check_batch(entries, "SendMessageBatch")
        total = 0
        for entry in entries:
            total += self._check(kwargs["QueueUrl"], entry, "SendMessageBatch")
        if total > MAX_BYTES:
            raise self._fail(
                "SendMessageBatch", f"Batch requests cannot be longer than {MAX_BYTES} bytes", "BatchRequestTooLong"
            )
        return self._client.send_message_batch(**kwargs)

    def change_message_visibility(self, **kwargs: Any) -> Any:
        self._check_visibility(kwargs["VisibilityTimeout"], "ChangeMessageVisibility")
        return self._client.change_message_visibility(**kwargs)

    def change_message_visibility_batch(self, **kwargs: Any) -> Any:
        self._check_batch(kwargs["Entries"], "ChangeMessageVisibilityBatch")
        for entry in kwargs["Entries"]:
            self._check_visibility(entry["VisibilityTimeout"], "ChangeMessageVisibilityBatch")
        return self._client.change_message_visibility_batch(**kwargs)

    def delete_message_batch(self, **kwargs: Any) -> Any:
        self._check_batch(kwargs["Entries"], "DeleteMessageBatch")
        return self._client.delete_message_batch(**kwargs)

    def _fail(self, operation: str, message: str, code: str = "InvalidParameterValue") -> ClientError:
        self.refused.append(f"{operation}: {message}")
        return _refuse(operation, message, code)

    def _check_batch(self, entries: list[dict[str, Any]], operation: str) -> None:
        if not 1 <= len(entries) <= 10:
            raise self._fail(
                operation,
                f"{len(entries)} entries: a batch has 1-10",
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            )
        if len({e["Id"] for e in entries}) != len(entries):
            raise self._fail(operation, "Id values must be unique", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct")

    def _check_visibility(self, seconds: int, operation: str) -> None:
        if not 0 <= int(seconds) <= 43_200:
            raise self._fail(operation, f"VisibilityTimeout {seconds} is outside 0-43200")

    def _check(self, url: str, message: dict[str, Any], operation: str) -> int:
        body = message.get("MessageBody", "")
        if not body:
            raise self._fail(operation, "The request must contain the parameter MessageBody", "MissingParameter")
        if not _ALLOWED.match(body):
            raise self._fail(operation, "Invalid characters found in the message body")
        size = len(body.encode("utf-8"))
        attributes = message.get("MessageAttributes") or {}
        if len(attributes) > 10:
            raise self._fail(operation, f"{len(attributes)} message attributes: at most 10 are allowed")
        for name, attr in attributes.items():
            size += self._check_attribute(name, attr, operation)
        if size > MAX_BYTES:
            raise self._fail(
                operation,
                f"One or more parameters are invalid. Reason: Message must be shorter than {MAX_BYTES} bytes.",
            )
        fifo = url.endswith(".fifo")
        delay = message.get("DelaySeconds")
        if delay is not None and (fifo or not 0 <= int(delay) <= 900):
            raise self._fail(
                operation, f"DelaySeconds {delay} is not allowed here (0-900, and none per message on FIFO queues)"
            )
        group = message.get("MessageGroupId")
        if fifo and not group:
            raise self._fail(operation, "The request must contain the parameter MessageGroupId.", "MissingParameter")
        if group is not None and not _GROUP.fullmatch(group):
            raise self._fail(operation, f"Value {group} for parameter MessageGroupId is invalid.")
        return size

    def _check_attribute(self, name: str, attr: dict[str, Any], operation: str) -> int:
        lowered = name.lower()
        if (
            not _NAME.match(name)
            or lowered.startswith(("aws.", "amazon."))
            or name.startswith(".")
            or name.endswith(".")
            or ".." in name
        ):
            raise self._fail(operation, f"Message attribute name {name!r} is invalid")
        data_type = attr.get("DataType", "")
        base = data_type.split(".", 1)[0]
        if base not in ("String", "Number", "Binary"):
            raise self._fail(operation, f"Message attribute {name!r} has an invalid DataType {data_type!r}")
        if base == "Binary":
            value = attr.get("BinaryValue") or b""
            if not value:
                raise self._fail(operation, f"Message attribute {name!r} must contain a non-empty value")
            return len(name) + len(data_type) + len(value)
        text = attr.get("StringValue")
        if not text:
            raise self._fail(operation, f"Message attribute {name!r} must contain a non-empty value")
        if not _ALLOWED.match(text):
            raise self._fail(operation, f"Message attribute {name!r} contains invalid characters")
        if base == "Number" and not _NUMBER.match(text):
            raise self._fail(operation, f"Message attribute {name!r} of type Number is not a number: {text!r}")
        return len(name.encode()) + len(data_type.encode()) + len(text.encode("utf-8"))
