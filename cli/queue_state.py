"""What SQS and Lambda say about a pool right now: its queues' depths, its worker's state and reserved
concurrency. Read by `jobstack stats` and the console, the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cli.target import Target

_DEPTHS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


@dataclass(frozen=True)
class QueueCounts:
    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


def queue_counts(sqs: Any, url: str) -> QueueCounts:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(_DEPTHS))["Attributes"]
    visible, in_flight, delayed = (int(attrs.get(n, 0)) for n in _DEPTHS)
    return QueueCounts(visible, in_flight, delayed)


def worker_state(target: Target, pool: str) -> str | None:
    """The pool's event source mapping's state (Enabled, Disabled, ...), if a deployed stack names it."""
    mapping_id = target.output("EventSourceMappingId", pool) if target.env else None
    if not mapping_id:
        return None
    state: str = target.client("lambda").get_event_source_mapping(UUID=mapping_id)["State"]
    return state


def set_worker(target: Target, mapping_id: str, *, enabled: bool) -> str:
    """Pause (disable) or resume (enable) an event source mapping: its messages wait in the queue meanwhile.
    Its state after the call (Disabling, Enabling: Lambda settles it within seconds)."""
    state: str = target.client("lambda").update_event_source_mapping(UUID=mapping_id, Enabled=enabled)["State"]
    return state


def reserved_concurrency(target: Target, pool: str) -> int | None:
    """The pool's function's reserved concurrency (None: unreserved, or no deployed stack names it)."""
    name = target.output("WorkerFunctionName", pool) if target.env else None
    if not name:
        return None
    reserved = target.client("lambda").get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    return int(reserved) if reserved is not None else None
