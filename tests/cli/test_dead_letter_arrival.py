"""When a dead letter arrived, by AWS's documented rules rather than moto's (which keeps whatever it was
sent): "For standard queues, the expiration of a message is always based on its original enqueue timestamp.
When a message is moved to a dead-letter queue, the enqueue timestamp is unchanged ... For FIFO queues, the
enqueue timestamp resets when the message is moved to a dead-letter queue" (SQS Developer Guide, "Setting-up
dead-letter queue retention"). The worker sends its own dead letters (SendMessage), so theirs is their arrival."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cli.dlq import DeadLetter
from worker.contract import DEAD_LETTER_KIND

pytestmark = pytest.mark.unit

SENT = datetime(2026, 12, 6, 3, 12, tzinfo=UTC)


def _letter(attributes: dict[str, str], kind: str | None) -> DeadLetter:
    message_attributes = {DEAD_LETTER_KIND: {"DataType": "String", "StringValue": kind}} if kind else {}
    stamp = {"SentTimestamp": str(int(SENT.timestamp() * 1000))}
    return DeadLetter("m", "r", "{}", stamp | attributes, message_attributes)


def test_the_workers_own_dead_letter_arrived_when_it_was_sent() -> None:
    assert _letter({}, "failed").arrived_at == SENT


def test_a_message_sqs_moved_from_a_standard_queue_has_no_known_arrival() -> None:
    letter = _letter({}, None)
    assert letter.arrived_at is None and letter.sent_at == SENT  # its first enqueue, kept by the move


def test_a_message_sqs_moved_to_a_fifo_dead_letter_queue_arrived_at_its_reset_enqueue_time() -> None:
    assert _letter({"MessageGroupId": "customer-7"}, None).arrived_at == SENT
