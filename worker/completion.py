"""A success's completion, deferred to the next claim: one round trip and one commit per job instead of two.

When a job's handler returns, worker/processing.py calls `complete_with_next_claim`. The completion is held
until the batch's next record is claimed; the two go to PostgreSQL as one statement
(`db.complete_and_claim`), so the completion is durable before the next handler starts. Anything else
completes it alone first: the end of the batch, the same job's duplicate in the batch, SQLite (local runs),
or a direct caller.

If the database fails on the way, or anything else interrupts the statement (a busy pool, a bug), the held
success is not confirmed: `final()` then gives the batch its replacement decision, which returns the record
to the queue (UNAVAILABLE, or ERROR for anything but the database) rather than acknowledging it. Its row
stays `processing` until the stale window hands it to a later delivery, as when a plain completion fails.
A held success is never acknowledged unless its completion was sent and answered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from uuid import UUID

from db import Claim, DatabaseUnavailable, Job, claim_job, complete_and_claim, complete_job, redact
from worker.observability import LOGGER_NAME
from worker.outcomes import Decision, Outcome
from worker.runtime import Runtime

log = logging.getLogger(LOGGER_NAME)


@dataclass(frozen=True)
class _Held:
    job_id: UUID
    job_type: str
    attempt: int
    decision: Decision


class DeferredCompletion:
    """The batch's one held completion, and the decisions of those that could not be confirmed."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._held: _Held | None = None
        self._unconfirmed: list[tuple[Decision, Decision]] = []

    def complete_with_next_claim(self, job: Job, succeeded: Decision) -> None:
        """`job`'s handler returned: complete it with the next claim (or at the next `flush`)."""
        self.flush()
        self._held = _Held(job.id, job.type, job.attempts, succeeded)

    def claim(self, job_id: UUID, *, stale_after: timedelta, job_type: str) -> Claim:
        """Claim `job_id`, completing the held success in the same statement where PostgreSQL allows."""
        held, db = self._held, self.runtime.db
        if held is None or held.job_id == job_id or db.dialect != "postgresql":
            self.flush()
            return claim_job(db, job_id, stale_after=stale_after, job_type=job_type)
        self._held = None
        try:
            completed, claim = complete_and_claim(
                db, (held.job_id, held.attempt), job_id, stale_after=stale_after, job_type=job_type
            )
        except BaseException as err:
            self._not_confirmed(held, err)
            raise
        if not completed:
            _reclaimed(held)
        return claim

    def flush(self) -> None:
        """Complete the held success now, alone."""
        held, self._held = self._held, None
        if held is None:
            return
        try:
            completed = complete_job(self.runtime.db, held.job_id, attempt=held.attempt)
        except BaseException as err:
            self._not_confirmed(held, err)
            raise
        if not completed:
            _reclaimed(held)

    def abandon(self, reason: str) -> None:
        """The database went away with a completion held: its record goes back to the queue."""
        held, self._held = self._held, None
        if held is not None:
            self._not_confirmed(held, DatabaseUnavailable(reason))

    def final(self, decision: Decision) -> Decision:
        """`decision`, or what replaced it because its completion was not confirmed."""
        for original, replacement in self._unconfirmed:
            if original is decision:
                return replacement
        return decision

    def _not_confirmed(self, held: _Held, err: BaseException) -> None:
        """The held completion was not confirmed: its record goes back to the queue with why."""
        if isinstance(err, DatabaseUnavailable):
            returned = replace(
                held.decision, outcome=Outcome.UNAVAILABLE, error=str(err), cause=err.kind, visibility_seconds=None
            )
        else:
            error = redact(f"completion not confirmed: {type(err).__name__}: {err}")
            returned = replace(held.decision, outcome=Outcome.ERROR, error=error, visibility_seconds=None)
        self._unconfirmed.append((held.decision, returned))


def _reclaimed(held: _Held) -> None:
    log.warning(
        "job finished after another invocation reclaimed it; its result stands, the row is theirs",
        extra={"job_id": str(held.job_id), "type": held.job_type, "attempt": held.attempt},
    )
