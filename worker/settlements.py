"""Completions that ride on the next claim: one round trip and one commit per job instead of two.

A job whose handler returned is held here as unsettled. When the batch's next record is claimed, the
held completion and that claim go to PostgreSQL as one statement (`db.complete_and_claim`), so the
completion is durable before the next handler starts. Anything else flushes it alone first: the end of
the batch, the same job's duplicate in the batch, SQLite (local runs), or a direct caller. If the database
fails on the way, or anything else interrupts the statement (a busy pool, a bug), the held job's record
is returned to the queue (UNAVAILABLE, or ERROR for anything but the database) rather than acknowledged:
its row stays `processing` until the stale window hands it to a later delivery, as when a plain
completion fails. A held success is never acknowledged unless its completion was sent and answered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from db import Claim, DatabaseUnavailable, Job, claim_job, complete_job
from db.engine import redact
from db.repository import complete_and_claim
from worker.observability import LOGGER_NAME
from worker.outcomes import Outcome, RecordResult
from worker.runtime import Runtime

log = logging.getLogger(LOGGER_NAME)


@dataclass
class Unsettled:
    job_id: UUID
    job_type: str
    attempt: int
    result: RecordResult


class Settlements:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pending: Unsettled | None = None

    def hold(self, job: Job, result: RecordResult) -> None:
        """`job`'s handler returned: complete it with the next claim (or at the next flush)."""
        self.flush()
        self.pending = Unsettled(job.id, job.type, job.attempts, result)

    def claim(self, job_id: UUID, *, stale_after: timedelta, job_type: str) -> Claim:
        held, db = self.pending, self.runtime.db
        if held is None or held.job_id == job_id or db.dialect != "postgresql":
            self.flush()
            return claim_job(db, job_id, stale_after=stale_after, job_type=job_type)
        self.pending = None
        try:
            completed, claim = complete_and_claim(
                db, (held.job_id, held.attempt), job_id, stale_after=stale_after, job_type=job_type
            )
        except BaseException as err:
            _returned(held, err)
            raise
        if not completed:
            _reclaimed(held)
        return claim

    def flush(self) -> None:
        held, self.pending = self.pending, None
        if held is None:
            return
        try:
            completed = complete_job(self.runtime.db, held.job_id, attempt=held.attempt)
        except BaseException as err:
            _returned(held, err)
            raise
        if not completed:
            _reclaimed(held)

    def abandon(self, reason: str) -> None:
        """The database went away with a completion held: its record goes back to the queue."""
        held, self.pending = self.pending, None
        if held is not None:
            _returned(held, DatabaseUnavailable(reason))


def _returned(held: Unsettled, err: BaseException) -> None:
    """The held completion was not confirmed: its record goes back to the queue with why."""
    result = held.result
    if isinstance(err, DatabaseUnavailable):
        result.outcome, result.error, result.cause = Outcome.UNAVAILABLE, str(err), err.kind
    else:
        result.outcome, result.error = Outcome.ERROR, redact(f"completion not confirmed: {type(err).__name__}: {err}")
    result.visibility_seconds = None


def _reclaimed(held: Unsettled) -> None:
    log.warning(
        "job finished after another invocation reclaimed it; its result stands, the row is theirs",
        extra={"job_id": str(held.job_id), "type": held.job_type, "attempt": held.attempt},
    )
