"""Where a job's message goes: one `Queue`, or a `db.routes.Router` that picks a pool's queue per job type
(and per priority lane).
Both are `Destination`s, which is all `publish` and friends need; `db.routes.Routes` is not a destination
but the route map (the stack's `Routes` output, parsed) that a `Router` reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .sqs_limits import SQS_MAX_MESSAGE_BYTES


@dataclass(frozen=True)
class Queue:
    """Where messages go: a boto3 SQS client and the queue's URL (FIFO queues end in `.fifo`)."""

    client: Any
    url: str
    max_message_bytes: int = SQS_MAX_MESSAGE_BYTES

    @property
    def fifo(self) -> bool:
        return self.url.endswith(".fifo")

    def queue_for(self, job_type: str, priority: str | None = None) -> Queue:
        """Every job type, at every priority, goes to this one queue (a `Router` picks one per type and
        priority lane): the same code publishes with `priority=` where the stack has a single queue."""
        return self


class Destination(Protocol):
    """Where `publish` and friends send: a `Queue`, or a `db.routes.Router` over a stack's worker pools."""

    def queue_for(self, job_type: str, priority: str | None = None) -> Queue: ...


#: Validation without a queue at hand (an outbox's enqueue): SQS's limits; a queue with a smaller limit is
#: checked again when the message is sent.
ANY_QUEUE = Queue(client=None, url="")
