"""What one SQS record ends as: the outcome names the operator sees in logs, metrics and the README, and the
decision that carries them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from worker.contract import DeadLetterKind

if TYPE_CHECKING:  # a tenant-limited type's plan loads it; a plain worker never does
    from db.claiming.tenant_gate import TenantLimit

ABANDONED = "abandoned: worker did not finish"


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"  # handler returned; row completed; message deleted
    DUPLICATE = "duplicate"  # row already completed; handler not run; message deleted
    DEAD_LETTERED = "dead_lettered"  # copied to the DLQ with the reason; message deleted
    RETRY = "retry"  # handler raised with attempts left; message back after a backoff
    BUSY = "busy"  # another live invocation holds the job; message back later
    NOT_FOUND = "not_found"  # no row yet (commit race / replica lag); message back later
    DEFERRED = "deferred"  # too little time before the deadline to start; message back at once
    UNAVAILABLE = "unavailable"  # database unreachable; message back, nothing changed, invocation fails
    ERROR = "error"  # the worker itself failed (e.g. DLQ unreachable); message back
    CANCELLED = "cancelled"  # cancelled by an operator (before it ran, or while running and then stopped); deleted
    SNOOZED = "snoozed"  # the handler asked to run again later: no attempt used; message back when due
    THROTTLED = "throttled"  # its concurrency key had every slot taken: not run, no attempt; message back soon
    WAITING = "waiting"  # waits for a signal, a time or its tenant's turn: no attempt used; message deleted, row parked

    @property
    def acknowledged(self) -> bool:
        return self in (Outcome.SUCCEEDED, Outcome.DUPLICATE, Outcome.DEAD_LETTERED, Outcome.CANCELLED, Outcome.WAITING)


#: Outcomes of deliveries that never ran the handler and left the job as it was: they must not cost the
#: job its attempts, however often they happen.
NOT_RUN = frozenset(
    {Outcome.BUSY, Outcome.NOT_FOUND, Outcome.DEFERRED, Outcome.UNAVAILABLE, Outcome.ERROR, Outcome.THROTTLED}
)


@dataclass(frozen=True, slots=True)
class Decision:
    """What becomes of one record. worker/processing.py decides it and never calls SQS; worker/batch.py
    carries it out (the dead letter, the fresh copy, the visibility) and, when SQS refuses, replaces it
    with what actually happened (`dataclasses.replace`): a decision is never changed in place."""

    outcome: Outcome
    message_id: str
    job_id: UUID | None = None
    job_type: str | None = None
    attempt: int | None = None
    error: str | None = None
    visibility_seconds: int | None = None  # set the message's visibility to this (None: leave it)
    handler_ms: float | None = None
    handler_failed: bool = False
    #: A first attempt's wait from publish (or its run_at) to this claim: the JobQueueWait metric.
    queue_wait_ms: float | None = None
    #: Copy the message to the DLQ with this kind and `error` as its reason (the outcome is DEAD_LETTERED).
    dead_letter: DeadLetterKind | None = None
    #: Replace the message by a fresh copy (new receive count), visible after this many seconds, before
    #: SQS's redrive can take it; the original is then acknowledged and the job carries on in the copy.
    requeue_after: int | None = None
    #: The fresh copy was sent (the batch sets it once SQS accepted it).
    requeued: bool = False
    #: For UNAVAILABLE: DatabaseUnavailable.kind ("auth", "tls", "unreachable").
    cause: str | None = None
    #: Jobs that waited for this one and are pending now (db/dependencies.py): the batch sends their messages.
    released: tuple[UUID, ...] = ()
    #: A claimed job's tenant limit and tenant: after the batch, the slot it held releases the tenant's parked
    #: jobs (db/tenant_turns.py; worker/transport.py: send_released).
    turn: tuple[TenantLimit, str] | None = None

    @property
    def acknowledged(self) -> bool:
        return self.outcome.acknowledged or self.requeued
