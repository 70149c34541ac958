"""How a batch settles its successes: per job (the default) or batched (a pool's `completion: batched`).

Per job (DeferredCompletion): a success's completion, deferred to the next claim: one round trip and one
commit per job instead of two.

When a job's handler returns, worker/processing.py calls `complete_with_next_claim`. The completion is held
until the batch's next record is claimed; the two go to PostgreSQL as one statement (the type's
`ClaimPlan.complete_and_claim`, db/claiming/), so the completion is durable before the next handler
starts. Anything else completes it alone first: the end of the batch, the same job's duplicate in the
batch, SQLite (local runs), or a direct caller.

If the database fails on the way, or anything else interrupts the statement (a busy pool, a bug), the held
success is not confirmed: `final()` then gives the batch its replacement decision, which returns the record
to the queue (UNAVAILABLE, or ERROR for anything but the database) rather than acknowledging it. Its row
stays `processing` until the stale window hands it to a later delivery, as when a plain completion fails.
A held success is never acknowledged unless its completion was sent and answered.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from uuid import UUID

from db import Claim, ClaimOutcome, ClaimPlan, DatabaseUnavailable, Job, redact
from db.claiming import NO_INVOCATION, HeldClaim, Invocation, claim_many, release_claims
from db.clock import utcnow
from db.lifecycle import complete_many, finish_job, in_one_statement, stamp_heartbeats
from worker.config import HEARTBEAT_HOLD
from worker.observability import LOGGER_NAME
from worker.outcomes import Decision, Outcome
from worker.record import SqsRecord
from worker.runtime import Runnable, Runtime
from worker.tracing import NO_TRACE, JobTrace
from worker.transport import change_visibility

log = logging.getLogger(LOGGER_NAME)


@dataclass(frozen=True)
class _Held:
    job_id: UUID
    job_type: str
    attempt: int
    decision: Decision
    result: str | None  # the handler's result as JSON text (db.lifecycle.encode_result)
    dependents: bool  # others waited for it when claimed: its completion settles them in the same statement
    trace: JobTrace = field(default=NO_TRACE, compare=False)


@contextmanager
def _completing(held: Sequence[_Held]) -> Iterator[None]:
    """Each held job's `completion` span: the statement that completed it, wherever it ran (riding on the
    next record's claim, or one statement for a whole batch)."""
    start = time.time_ns()
    try:
        yield
    except BaseException as err:
        for each in held:
            each.trace.timed_step("completion", start, time.time_ns(), error=type(err).__name__)
        raise
    end = time.time_ns()
    for each in held:
        each.trace.timed_step("completion", start, end)


class _Heartbeat:
    """One batch's heartbeat. Every `heartbeat` (worker/config.py) while the batch runs, its messages are kept
    invisible for HEARTBEAT_HOLD beats more (ChangeMessageVisibility, far inside SQS's 12 hours from the
    first receive: Lambda's 15 minutes), and the rows it claimed are stamped (db.lifecycle.stamp_heartbeats),
    so a redelivery never takes over a job that is still running, however long its step, and a dead
    invocation's messages come back, and its claims count as stale, within HEARTBEAT_HOLD beats rather than
    the function's whole timeout. The first beat comes one interval after the batch started: a batch that
    ends sooner (most) makes no call at all. A beat costs one ChangeMessageVisibilityBatch per ten records
    and one UPDATE, through a connection of its own (`Runtime.heartbeat_db`: the handler may hold the
    worker's connection for as long as it runs); one that fails is logged, and the next tries again."""

    def __init__(self, runtime: Runtime, records: Sequence[SqsRecord]) -> None:
        self.runtime, self.records = runtime, list(records)
        self.job_ids = [r.message.job_id for r in self.records if r.message is not None]
        self.interval = runtime.config.heartbeat
        self.since = utcnow()
        self.next_beat = 0.0
        self.beating = threading.Lock()  # held by a beat; its batch's end waits for it
        self.ended = False

    def beat(self) -> None:
        assert self.interval is not None
        hold_seconds = int(self.interval.total_seconds()) * HEARTBEAT_HOLD
        change_visibility(self.runtime, [(record, hold_seconds) for record in self.records])
        try:
            stamp_heartbeats(self.runtime.heartbeat_db, self.job_ids, since=self.since)
        except Exception as err:  # the next beat tries again; the stale window is several beats long
            log.warning("heartbeat not stamped", extra={"error": redact(f"{type(err).__name__}: {err}")})


class _Beats:
    """The process's one heartbeat thread, started at the first batch that needs it and kept: each batch
    joins and leaves it (a lock each), instead of starting a thread of its own. It beats for every batch
    running (the local runner runs several at once, one per invocation slot), each on its own schedule.

    Joining and leaving do not wake the thread: it wakes when the soonest beat is due, or, with no batch, once
    an interval, so a batch that joins is due no sooner than the thread next looks and one that left is found
    gone then. Waking it on each cost two thread switches an invocation, measurable in a batch of one's
    jobs/s."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: set[_Heartbeat] = set()
        self._changed = threading.Event()
        self._thread: threading.Thread | None = None
        self._wakes_at = math.inf  # when the thread next looks (time.monotonic()), under the lock
        self._idle = math.inf  # how long it sleeps with no batch: the shortest interval joined

    def join(self, batch: _Heartbeat) -> None:
        assert batch.interval is not None
        interval = batch.interval.total_seconds()
        batch.since, batch.next_beat = utcnow(), time.monotonic() + interval
        with self._lock:
            self._batches.add(batch)
            self._idle = min(self._idle, interval)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="jobstack-heartbeat", daemon=True)
                self._thread.start()
            sooner = batch.next_beat < self._wakes_at
        if sooner:  # only a batch due before the thread next looks wakes it (a first one, a shorter interval)
            self._changed.set()

    def leave(self, batch: _Heartbeat) -> None:
        """After a beat in flight for `batch` is done: the batch then sets its records' final visibility,
        which no late beat may override."""
        with batch.beating:
            batch.ended = True
            with self._lock:
                self._batches.discard(batch)

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                due = min((b.next_beat for b in self._batches), default=now + self._idle)
                self._wakes_at = due
            self._changed.wait(max(due - now, 0.0))
            self._changed.clear()
            now = time.monotonic()
            with self._lock:
                ready = [b for b in self._batches if b.next_beat <= now]
            for batch in ready:
                with batch.beating:
                    if batch.ended:
                        continue
                    assert batch.interval is not None
                    batch.next_beat = now + batch.interval.total_seconds()
                    batch.beat()


_BEATS = _Beats()


class _Unconfirmed:
    """The decisions of held successes whose completion was not confirmed, and their replacements; the
    dependents the confirmed ones released (pending now: the batch sends their messages); and the batch's
    heartbeat, which keeps what it claimed alive until it is settled (`kept_alive`). Every claim names
    `invocation` on its row."""

    def __init__(self, runtime: Runtime, records: Sequence[SqsRecord], invocation: Invocation) -> None:
        self.invocation = invocation
        self._unconfirmed: list[tuple[Decision, Decision]] = []
        self.released: list[UUID] = []
        self._heartbeat = _Heartbeat(runtime, records)

    @contextmanager
    def kept_alive(self) -> Iterator[None]:
        """The batch's messages and claims kept alive (its heartbeat) while the block runs."""
        heartbeat = self._heartbeat
        if heartbeat.interval is None or not heartbeat.records:
            yield
            return
        _BEATS.join(heartbeat)
        try:
            yield
        finally:
            _BEATS.leave(heartbeat)

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


class DeferredCompletion(_Unconfirmed):
    """The batch's one held completion, and the decisions of those that could not be confirmed."""

    def __init__(
        self, runtime: Runtime, records: Sequence[SqsRecord] = (), invocation: Invocation = NO_INVOCATION
    ) -> None:
        super().__init__(runtime, records, invocation)
        self.runtime = runtime
        self._held: _Held | None = None

    def complete_with_next_claim(
        self, job: Job, succeeded: Decision, result: str | None = None, trace: JobTrace = NO_TRACE
    ) -> None:
        """`job`'s handler returned: complete it with the next claim (or at the next `flush`)."""
        self.flush()
        self._held = _Held(job.id, job.type, job.attempts, succeeded, result, job.has_dependents, trace)

    def claim(self, job_id: UUID, plan: ClaimPlan) -> Claim:
        """Claim `job_id` by its type's plan, completing the held success in the same statement where the
        plan and the database allow (a plan with a gate that is a step completes it first, alone)."""
        held, db = self._held, self.runtime.db
        if held is None or held.job_id == job_id or not plan.rides_with_completion(db):
            self.flush()
            return plan.claim(db, job_id, invocation=self.invocation)
        self._held = None
        try:
            with _completing([held]):
                finished, claim = plan.complete_and_claim(
                    db,
                    (held.job_id, held.attempt),
                    job_id,
                    result=held.result,
                    dependents=held.dependents,
                    invocation=self.invocation,
                )
        except BaseException as err:
            self._not_confirmed(held, err)
            raise
        self.released += finished.released
        if not finished.completed:
            _reclaimed(held)
        return claim

    def flush(self) -> None:
        """Complete the held success now, alone."""
        held, self._held = self._held, None
        if held is None:
            return
        try:
            with _completing([held]):
                finished = finish_job(
                    self.runtime.db, held.job_id, attempt=held.attempt, result=held.result, dependents=held.dependents
                )
        except BaseException as err:
            self._not_confirmed(held, err)
            raise
        self.released += finished.released
        if not finished.completed:
            _reclaimed(held)

    def abandon(self, reason: str) -> None:
        """The database went away with a completion held: its record goes back to the queue."""
        held, self._held = self._held, None
        if held is not None:
            self._not_confirmed(held, DatabaseUnavailable(reason))


class BatchedCompletion(_Unconfirmed):
    """A pool with `completion: batched`: the batch's jobs claimed in one statement (at its first claim),
    its successes completed in one more (at `flush`, the end of the batch): 0.2 statements a job in a batch
    of 10 instead of 1.1.

    The price is the per-job mode's guarantee: a success is durable only at the end of its batch. If the
    invocation dies before, its claimed rows stay `processing` until the stale window, and the jobs run
    again, their attempt counted: at least once, for idempotent handlers (the README says so). A claim the
    batch never uses (a record deferred for lack of time) is handed back as it was, its attempt not spent.
    A record whose job the batch claim missed (another invocation holds it, no row yet, a duplicate in the
    batch) is claimed on its own, which says why, as in per-job mode. SQLite (local runs) completes each
    success alone, as the per-job mode does there."""

    def __init__(self, runtime: Runtime, records: list[SqsRecord], invocation: Invocation = NO_INVOCATION) -> None:
        super().__init__(runtime, records, invocation)
        self.runtime = runtime
        self._wanted = _claimable(runtime, records)
        self._claimed = False
        self._claims: dict[UUID, HeldClaim] = {}
        self._held: list[_Held] = []

    def claim(self, job_id: UUID, plan: ClaimPlan) -> Claim:
        db = self.runtime.db
        if not self._claimed:
            self._claimed = True
            if in_one_statement(db):
                self._claims = claim_many(
                    db,
                    self._wanted,
                    stale_after=plan.stale_after,
                    silent_after=plan.silent_after,
                    invocation=self.invocation,
                )
        held = self._claims.pop(job_id, None)
        if held is not None:
            return Claim(ClaimOutcome.CLAIMED, held.job)
        return plan.claim(db, job_id, invocation=self.invocation)

    def complete_with_next_claim(
        self, job: Job, succeeded: Decision, result: str | None = None, trace: JobTrace = NO_TRACE
    ) -> None:
        """`job`'s handler returned: completed with the batch's other successes at `flush`."""
        self._held.append(_Held(job.id, job.type, job.attempts, succeeded, result, job.has_dependents, trace))

    def flush(self) -> None:
        """Hand back the claims not used, then complete every held success in one statement."""
        unused, self._claims = list(self._claims.values()), {}
        held, self._held = self._held, []
        db = self.runtime.db
        try:
            if unused:
                release_claims(db, unused)
            completed: set[UUID] = set()
            if in_one_statement(db):
                with _completing(held):
                    many = complete_many(
                        db,
                        [(h.job_id, h.attempt) for h in held],
                        results=[h.result for h in held],
                        dependents=any(h.dependents for h in held),
                    )
                completed, self.released = set(many.completed), self.released + list(many.released)
            else:
                for h in held:
                    with _completing([h]):
                        finished = finish_job(db, h.job_id, attempt=h.attempt, result=h.result, dependents=h.dependents)
                    self.released += finished.released
                    if finished.completed:
                        completed.add(h.job_id)
        except BaseException as err:
            for each in held:
                self._not_confirmed(each, err)
            raise
        for each in held:
            if each.job_id not in completed:
                _reclaimed(each)

    def abandon(self, reason: str) -> None:
        """The database went away: every held success goes back to the queue. Unused claims stay
        `processing` until the stale window (nothing can hand them back now)."""
        held, self._held = self._held, []
        self._claims = {}
        for each in held:
            self._not_confirmed(each, DatabaseUnavailable(reason))


def _claimable(runtime: Runtime, records: list[SqsRecord]) -> list[tuple[UUID, str]]:
    """(job id, type) of each record that names a job of a type this worker runs and whose plan batches, each
    job once. A type with a gate that cannot batch is claimed one by one (`ClaimPlan.unbatchable`)."""
    wanted: dict[UUID, str] = {}
    for record in records:
        message = record.message
        if message is None:
            continue
        runnable = runtime.runnables.get(message.type)
        if isinstance(runnable, Runnable) and runnable.plan.unbatchable is None:
            wanted.setdefault(message.job_id, message.type)
    return list(wanted.items())


#: What worker/processing.py and worker/batch.py need of either mode.
Completion = DeferredCompletion | BatchedCompletion


def _reclaimed(held: _Held) -> None:
    log.warning(
        "job finished after another invocation reclaimed it; its result stands, the row is theirs",
        extra={"job_id": str(held.job_id), "type": held.job_type, "attempt": held.attempt},
    )
