"""What becomes of one SQS record: the worker's state machine. It DECIDES; worker/batch.py ACTS.

parse → check the time left → claim → run the handler → a `Decision` (worker/outcomes.py): acknowledged,
dead-lettered with a kind and a reason, or returned to the queue with a visibility. It reads and writes the
job's row (db/, PostgreSQL) but never calls SQS: the batch sends the dead letters and fresh copies it
decides, in record order, so a FIFO group's hold sees what really happened.

A message that contradicts its row (another type, a garbled body) is dead-lettered without touching the
row: the row's own message may still be on its way and must find it unchanged.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import random
import time
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, TypeVar

import worker.jobs  # noqa: F401 - registers the built-in handlers wherever records are processed
from db import (
    Claim,
    ClaimOutcome,
    DatabaseUnavailable,
    InvalidPayload,
    Job,
    JobStatus,
    UnknownJobType,
    job_type_names,
    redact,
)
from db.clock import utcnow
from db.lifecycle import AttemptEnd, Ending, Finished, ResultNotStorable, encode_result, end_attempt, finish_job
from db.sqs_limits import SQS_MAX_DELAY_SECONDS, SQS_MAX_VISIBILITY_SECONDS
from db.states import SPENT
from worker.completion import Completion
from worker.config import WorkerConfig
from worker.contract import DeadLetterKind
from worker.exceptions import Slice, Snooze, Wait
from worker.observability import LOGGER_NAME
from worker.outcomes import ABANDONED, NOT_RUN, Decision, Outcome
from worker.record import SqsRecord
from worker.registry import JobContext, RegisteredHandler
from worker.runtime import Runnable, Runtime
from worker.steps import StepLost
from worker.tracing import NO_TRACE, JobTrace

log = logging.getLogger(LOGGER_NAME)
_NO_DEADLINE_MS = 15 * 60 * 1000
#: A throttled record comes back after 1, 2, 4 ... seconds (jittered), at most this: soon after a slot frees.
THROTTLED_MAX_SECONDS = 30
_TURNED_AWAY = (ClaimOutcome.THROTTLED, ClaimOutcome.RATE_LIMITED)


@dataclass(frozen=True)
class HandlerCall:
    """The one point where a record's decision waits for user code: the handler, called with its context. The
    decision is a generator that yields this and is sent back what the handler returned (or has its exception
    thrown in), so one body of rules serves a sync driver (`decide`) and an async one (`decide_async`)."""

    run: Callable[[JobContext], object]
    ctx: JobContext


_T = TypeVar("_T")
#: A decision's steps: yields the handler's call, ends with its value.
Steps = Generator[HandlerCall, object, _T]


def decide(
    record: SqsRecord,
    context: Any,
    runtime: Runtime,
    completion: Completion,
    trace: JobTrace = NO_TRACE,
    run_coroutine: Callable[[Coroutine[Any, Any, object]], object] | None = None,
) -> Decision:
    """One record's decision. A success's completion is deferred to the next claim (`completion`); `trace`
    gets the record's claim, handler and completion spans (worker/tracing.py). An `async def` handler's
    coroutine is run by `run_coroutine` (the invocation's event loop: worker/event_loop.py), to its end,
    before the next record starts."""
    steps = _decide(record, context, runtime, completion, trace)
    try:
        call = next(steps)
        while True:
            try:
                returned = call.run(call.ctx)
                if inspect.iscoroutine(returned):
                    if run_coroutine is None:
                        returned.close()
                        raise RuntimeError("an async def handler, and no event loop to run it on")
                    returned = run_coroutine(returned)
            except BaseException as err:  # the handler's, raised where it was called: the rules catch what they catch
                call = steps.throw(err)
            else:
                call = steps.send(returned)
    except StopIteration as done:
        decision: Decision = done.value
        return decision


async def decide_async(
    record: SqsRecord, context: Any, runtime: Runtime, completion: Completion, trace: JobTrace = NO_TRACE
) -> Decision:
    """`decide`, awaiting an `async def` handler on the running loop, so other records' handlers run while
    it waits (`runs_together` says which records run so)."""
    steps = _decide(record, context, runtime, completion, trace)
    try:
        call = next(steps)
        while True:
            try:
                returned = call.run(call.ctx)
                if inspect.isawaitable(returned):
                    returned = await returned
            except BaseException as err:
                call = steps.throw(err)
            else:
                call = steps.send(returned)
    except StopIteration as done:
        decision: Decision = done.value
        return decision


def runs_together(runtime: Runtime, record: SqsRecord) -> bool:
    """Whether `record` runs in its batch's second phase, beside the batch's other async jobs on the
    invocation's event loop (worker/batch.py): a standard pool's record whose type has an `async def` handler.

    A batch of 100 jobs that each await an API for 100 ms takes 10 s one after another; together, about as
    long as the slowest. So the batch first runs, one after another, every record of a FIFO pool (its group's
    order is the point of FIFO) and every record whose handler is sync (it holds the thread while it runs; an
    async handler met there is run to its end before the next record starts); then the rest together, each
    in a task of its own. What overlaps is the handlers' awaits: the worker's own steps (parse, claim,
    completion, a dead letter's send) are sync and short and run one at a time between them, on the same
    thread, so the batch's completion (per job, or batched) holds as in order and each decision is its own.
    The rules a handler meets are the sync handlers': the time left is checked before each claim, the batch's
    heartbeat keeps every claim alive while any runs, `ctx.cancel_requested()` reads an operator's cancel. A
    sync call inside an async handler (`ctx.step`, `ctx.cancel_requested`, a blocking client) holds the loop,
    and the other records' handlers with it, while it runs."""
    if record.group is not None or record.message is None:
        return False
    runnable = runtime.runnables.get(record.message.type)
    return isinstance(runnable, Runnable) and runnable.handler.is_async


def _dead_letter(base: Decision, kind: DeadLetterKind, reason: str, **fields: Any) -> Decision:
    return replace(base, outcome=Outcome.DEAD_LETTERED, dead_letter=kind, error=reason, **fields)


def _decide(
    record: SqsRecord, context: Any, runtime: Runtime, completion: Completion, trace: JobTrace
) -> Steps[Decision]:
    """The record's decision; where it ends an attempt other than in success, the row is moved once, here,
    by `end_attempt` (db/lifecycle.py), and the decision is what that found. A database gone is UNAVAILABLE;
    any other exception here is a bug of ours, which must not fail the batch's other records: ERROR."""
    try:
        decision, end = yield from _attempt(record, context, runtime, completion, trace)
        if end is None:
            return decision
        with trace.step("completion") if end.ending in _AFTER_A_RUN else contextlib.nullcontext():
            ended = end_attempt(runtime.db, end)
    except DatabaseUnavailable as err:
        return Decision(Outcome.UNAVAILABLE, record.message_id, error=str(err), cause=err.kind)
    except Exception as err:
        log.exception("worker error", extra={"message_id": record.message_id})
        return Decision(Outcome.ERROR, record.message_id, error=redact(f"{type(err).__name__}: {err}"))
    if end.ending in (Ending.SNOOZED, Ending.WAITS) and not ended.changed:
        return replace(decision, outcome=Outcome.DUPLICATE, error="another invocation took the job over while it ran")
    if ended.cancelled:  # asked to stop, and it stopped: not retried
        return replace(
            decision, outcome=Outcome.CANCELLED, dead_letter=None, visibility_seconds=None, released=ended.released
        )
    return replace(decision, released=ended.released)


_AFTER_A_RUN = (Ending.INVALID, Ending.FAILED)  # traced as the job's `completion` span


def _attempt(
    record: SqsRecord, context: Any, runtime: Runtime, completion: Completion, trace: JobTrace
) -> Steps[tuple[Decision, AttemptEnd | None]]:
    """The decision, and how the row's attempt ends if not in success (None: the row is not changed here)."""
    config = runtime.config
    mid = record.message_id
    message = record.message
    if message is None:
        # Even if it names a job, a garbled body says nothing reliable about it: the row stays as it is.
        base = Decision(Outcome.DEAD_LETTERED, mid, record.job_id_hint)
        return _dead_letter(base, DeadLetterKind.MALFORMED, f"malformed message: {record.malformed}"), None

    base = Decision(Outcome.DEAD_LETTERED, mid, message.job_id, message.type)
    runnable = runtime.runnables.get(message.type) or UnknownJobType(message.type, job_type_names())
    if not isinstance(runnable, Runnable):
        # The row of this type (if any) cannot run in this deployment: failed with the reason. A row of
        # another type is somebody else's and is left alone.
        end = AttemptEnd(Ending.UNRUNNABLE, message.job_id, error=str(runnable), job_type=message.type)
        return _dead_letter(base, DeadLetterKind.UNKNOWN_TYPE, str(runnable)), end

    job_type, handler = runnable.job_type, runnable.handler
    needed = max(config.min_time_left, handler.min_time_left or config.min_time_left)
    remaining_ms = _remaining_ms(context)
    if remaining_ms < needed.total_seconds() * 1000:
        error = f"{remaining_ms} ms left, {int(needed.total_seconds() * 1000)} ms needed to start"
        return replace(base, outcome=Outcome.DEFERRED, visibility_seconds=0, error=error), None

    with trace.step("claim"):
        claim = completion.claim(message.job_id, runnable.plan)
    if claim.outcome is not ClaimOutcome.CLAIMED:
        return _not_claimed(record, config, claim, base)
    job = claim.job
    assert job is not None
    wait = job.queue_wait
    limit = runnable.plan.tenant_limit
    turn = (limit, job.tenant) if limit is not None and job.tenant is not None else None
    wait_ms = None if wait is None else wait.total_seconds() * 1000
    base = replace(base, attempt=job.attempts, queue_wait_ms=wait_ms, turn=turn)
    try:
        payload = job_type.validate(job.payload)  # the row is the source of truth, not the message's copy
    except InvalidPayload as err:
        end = AttemptEnd(Ending.INVALID, job.id, job.attempts, str(err))
        return _dead_letter(base, DeadLetterKind.INVALID_PAYLOAD, str(err)), end
    return (yield from _run(record, context, runtime, completion, job, handler, payload, base, trace))


def _not_claimed(
    record: SqsRecord, config: WorkerConfig, claim: Claim, base: Decision
) -> tuple[Decision, AttemptEnd | None]:
    """A claim that did not take the job: what becomes of the record, from why it did not."""
    later = retry_delay(record.receive_count, base=config.backoff_base_seconds, cap=config.backoff_max_seconds)
    job = claim.job
    if claim.outcome in _TURNED_AWAY:  # by a gate of its type: unclaimed, no attempt spent
        # a gate's own wait (a rate limit's next token, jittered), else soon after a slot frees (a job ends)
        wait = claim.wait_seconds + random.uniform(0, claim.jitter_seconds)  # noqa: S311 - jitter, not secrecy
        wait = wait or retry_delay(record.receive_count, base=1, cap=THROTTLED_MAX_SECONDS)
        visibility = min(max(1, math.ceil(wait)), SQS_MAX_VISIBILITY_SECONDS)  # whole seconds, one at least
        return replace(base, outcome=Outcome.THROTTLED, visibility_seconds=visibility, error=claim.reason), None
    if claim.outcome is ClaimOutcome.PARKED:  # waits in the database for its tenant's turn: the message goes
        return replace(base, outcome=Outcome.WAITING, error=claim.reason), None
    if claim.outcome is ClaimOutcome.NOT_FOUND:
        return replace(base, outcome=Outcome.NOT_FOUND, visibility_seconds=later), None
    if claim.outcome is ClaimOutcome.COMPLETED:
        return replace(base, outcome=Outcome.DUPLICATE), None
    if claim.outcome is ClaimOutcome.CANCELLED:  # acknowledged without running: an operator cancelled it
        return replace(base, outcome=Outcome.CANCELLED), None
    if claim.outcome is ClaimOutcome.BUSY:
        return replace(base, outcome=Outcome.BUSY, visibility_seconds=later), None
    assert job is not None
    if claim.outcome is ClaimOutcome.NOT_DUE:  # a debounce moved its run_at: back when it is due
        assert job.run_at is not None
        wait = math.ceil((job.run_at - utcnow()).total_seconds())
        visibility = min(max(wait, 1), SQS_MAX_VISIBILITY_SECONDS)
        error = f"runs at {job.run_at.isoformat()}: returned until then"
        return replace(base, outcome=Outcome.DEFERRED, visibility_seconds=visibility, error=error), None
    if claim.outcome is ClaimOutcome.TYPE_MISMATCH:
        reason = f"message type {base.job_type!r} does not match job type {job.type!r}; the job is untouched"
        return _dead_letter(base, DeadLetterKind.TYPE_MISMATCH, reason), None
    # EXHAUSTED: died or failed on its last attempt. Still `processing` (its invocation died): failed now.
    running = job.status is JobStatus.PROCESSING
    reason = ABANDONED if running else (job.error or "no attempts left")
    end = AttemptEnd(Ending.EXHAUSTED, job.id, job.attempts, ABANDONED, running=running)
    return _dead_letter(base, DeadLetterKind.EXHAUSTED, reason, attempt=job.attempts), end


def _run(
    record: SqsRecord,
    context: Any,
    runtime: Runtime,
    completion: Completion,
    job: Job,
    handler: RegisteredHandler,
    payload: dict[str, Any],
    base: Decision,
    trace: JobTrace = NO_TRACE,
) -> Steps[tuple[Decision, AttemptEnd | None]]:
    """Run the claimed job's handler: succeeded (its completion deferred to the next claim, or committed with
    a transactional handler's writes), snoozed, retried, or failed for good."""
    config = runtime.config
    ctx = JobContext(
        job_id=job.id,
        type=job.type,
        payload=payload,
        db=runtime.db,
        log=trace.logger(str(job.id), job.type, job.attempts),
        attempt=job.attempts,
        max_attempts=job.max_attempts,
        message_id=record.message_id,
        _remaining_ms=lambda: _remaining_ms(context),
        _journaled=True,
        _start_margin=max(config.min_time_left, handler.min_time_left or config.min_time_left),
        _max_duration=handler.max_duration,
        _delivered=job.wait_result,
        _ordering_key=job.ordering_key,
        tenant=job.tenant,
    )
    if handler.transactional:
        completion.flush()  # a held success first: this job completes in its own transaction, below
    started = time.perf_counter()
    finished: Finished | None = None
    try:
        # A transactional handler writes through `ctx.conn`: its writes commit with the job's completion or
        # not at all (it raises, the completion misses, the commit fails: all roll back).
        with runtime.db.begin() if handler.transactional else contextlib.nullcontext() as conn:
            with trace.step("handler", expected=(Snooze,)):
                returned = yield HandlerCall(handler.run, replace(ctx, _conn=conn))
            if isinstance(returned, Snooze):
                raise returned  # a transactional handler's writes roll back: a snoozed run did not happen
            result = encode_result(returned)
            if conn is not None:
                with trace.step("completion"):
                    finished = finish_job(
                        conn, job.id, attempt=job.attempts, result=result, dependents=job.has_dependents
                    )
                if not finished.completed:
                    raise _CompletionLost(
                        "another invocation took the job over while it ran: this run's writes were rolled back"
                    )
    except DatabaseUnavailable:
        raise  # the row stays processing; the stale window hands it to a later invocation
    except Snooze as snooze:
        return _snoozed(job, replace(base, handler_ms=(time.perf_counter() - started) * 1000), snooze)
    except Wait as wait:
        return _waits(job, replace(base, handler_ms=(time.perf_counter() - started) * 1000), wait)
    except (_CompletionLost, StepLost) as lost:
        handler_ms = (time.perf_counter() - started) * 1000
        return replace(base, outcome=Outcome.DUPLICATE, error=str(lost), handler_ms=handler_ms), None
    except Exception as err:  # ConnectionBusy (the handler deadlocked its own connection) lands here too
        # redacted here, once: the reason goes to the row, the DLQ's attributes, the log line and the span
        error = redact(f"{type(err).__name__}: {err}" if not isinstance(err, ResultNotStorable) else str(err))
        failed = replace(base, error=error, handler_ms=(time.perf_counter() - started) * 1000, handler_failed=True)
        end = AttemptEnd(Ending.FAILED, job.id, job.attempts, error, for_good=SPENT(job))
        if end.for_good:
            return _dead_letter(failed, DeadLetterKind.FAILED, error), end
        backoff = retry_delay(job.attempts, base=config.backoff_base_seconds, cap=config.backoff_max_seconds)
        return replace(failed, outcome=Outcome.RETRY, visibility_seconds=backoff), end
    succeeded = replace(base, outcome=Outcome.SUCCEEDED, handler_ms=(time.perf_counter() - started) * 1000)
    if finished is not None:  # committed with the handler's own writes
        return replace(succeeded, released=finished.released), None
    completion.complete_with_next_claim(job, succeeded, result, trace)  # the UPDATE rides on the next claim
    return succeeded, None


class _CompletionLost(Exception):
    """A transactional handler's completion found the job taken over by another invocation: its writes roll
    back with the completion, and that invocation's run stands."""


def _snoozed(job: Job, base: Decision, snooze: Snooze) -> tuple[Decision, AttemptEnd]:
    """The handler asked to run again later: the row pending with its run_at and the attempt given back; the
    message returned until then (a longer wait than SQS's 12-hour visibility comes back early and is
    returned again by the claim's due check)."""
    wait = math.ceil(snooze.seconds)
    end = AttemptEnd(Ending.SNOOZED, job.id, job.attempts, run_at=utcnow() + timedelta(seconds=wait))
    decision = replace(
        base,
        outcome=Outcome.SNOOZED,
        attempt=job.attempts - 1,
        visibility_seconds=min(wait, SQS_MAX_VISIBILITY_SECONDS),
        error=str(snooze) if isinstance(snooze, Slice) else f"snoozed for {wait} s",
    )
    return decision, end


def _waits(job: Job, base: Decision, wait: Wait) -> tuple[Decision, AttemptEnd]:
    """The handler waits for a signal, or sleeps: the row parked (db/waits.py), the attempt given back, the
    message deleted, so nothing is in flight while it waits. A sleep within SQS's 15-minute delay is a snooze
    instead: its message comes back when it is due, without the sweeper."""
    seconds = (wait.until - utcnow()).total_seconds()
    if wait.key is None and seconds <= SQS_MAX_DELAY_SECONDS:
        return _snoozed(job, base, Snooze(min(max(seconds, 1), SQS_MAX_DELAY_SECONDS)))
    end = AttemptEnd(Ending.WAITS, job.id, job.attempts, run_at=wait.until, wait_key=wait.key)
    return replace(base, outcome=Outcome.WAITING, attempt=job.attempts - 1, error=str(wait)), end


def held_for_order(record: SqsRecord) -> Decision:
    """A FIFO record behind one of its group that was not acknowledged in this batch: returned unrun, so the
    group keeps its order (its head comes back first); other groups go on (Powertools' per-group FIFO)."""
    message = record.message  # its log line names the job like every other outcome's
    return Decision(
        Outcome.DEFERRED,
        record.message_id,
        job_id=message.job_id if message else None,
        job_type=message.type if message else None,
        visibility_seconds=0,  # visible at once: an invisible follower would keep the whole group locked
        error=f"held back: an earlier message of FIFO group {record.group!r} in this batch was not acknowledged",
    )


def before_the_receive_limit(record: SqsRecord, decision: Decision, config: WorkerConfig) -> Decision:
    """A returned record near SQS's receive limit: requeue it as a fresh copy, or, past the delivery budget,
    dead-letter it with the reason, before SQS's redrive takes it without one (see worker/batch.py)."""
    if decision.acknowledged or record.receive_count < config.requeue_at_receive_count:
        return decision
    total = record.deliveries
    if decision.outcome in NOT_RUN and total >= config.max_deliveries:
        reason = f"gave up after {total} deliveries that could not run the job ({decision.outcome}): {decision.error}"
        return _dead_letter(decision, DeadLetterKind.UNDELIVERABLE, reason)
    if decision.outcome is Outcome.NOT_FOUND and total >= config.max_receive_count:
        reason = f"no job row after {total} deliveries: was the message sent without publish()?"
        return _dead_letter(decision, DeadLetterKind.NOT_FOUND, reason)
    delay = decision.visibility_seconds
    if delay is None:  # database down or a worker error: wait as a retry would, not a hot loop
        delay = retry_delay(total, base=config.backoff_base_seconds, cap=config.backoff_max_seconds)
    return replace(decision, requeue_after=delay)


def retry_delay(attempt: int, *, base: int, cap: int, rand: Callable[[], float] = random.random) -> int:
    """Seconds until the next try after `attempt` failed: uniform in [d/2, d], d = min(cap, base x 2^(n-1)).
    Exponential so a failing dependency gets room to recover, jittered so a burst of failures does not
    return as a burst, capped so a job is retried within a bounded time."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return int(ceiling / 2 + rand() * ceiling / 2)


def _remaining_ms(context: Any) -> int:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return int(getter()) if callable(getter) else _NO_DEADLINE_MS
