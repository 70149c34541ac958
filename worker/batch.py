"""One SQS event: the batch ACTS on what worker/processing.py DECIDES, record by record, in order.

Each record is read once (worker/record.py), decided (worker/processing.py), and its decision carried out
at once through worker/transport.py (a dead letter, a fresh copy), so a FIFO group's hold sees what really
happened. While they run, the completion's heartbeat keeps the batch's messages invisible and its claims
stamped (worker/completion.py). Once the last success is completed, the batch owes SQS and Lambda the rest:

- Records returned to the queue are delayed by their backoff (ChangeMessageVisibility).
- A returned record whose receive count has reached half of maxReceiveCount is replaced by a fresh copy
  of its message before SQS's redrive can take it. SQS counts every receive toward maxReceiveCount
  (Lambda's throttled receives too, https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html),
  so without this, deliveries that never ran the handler (deferred, busy, not found, database down) would
  use up the job's attempts and SQS would dead-letter it with no reason. The other half of the count is
  headroom for throttles we never see. The copy carries the running total of deliveries; a job that
  never runs after JOB_MAX_DELIVERIES of them is dead-lettered by the worker, with the reason.
- FIFO queues: once a record of a message group is not acknowledged, every later record of that group in
  the batch is returned unrun, so order holds within the group; other groups go on.
- When the database is unreachable (or its secret unreadable) the invocation FAILS once every record is
  settled: Lambda counts a function error (the WorkerErrors alarm), and the event source mapping backs off
  instead of cycling messages toward the DLQ. Finished records are deleted first, because a failed
  invocation returns its whole batch. One record's failure never fails the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from db import ConfigError, DatabaseUnavailable, redact
from worker.completion import BatchedCompletion, Completion, DeferredCompletion
from worker.contract import BATCHED
from worker.event_loop import InvocationLoop
from worker.exceptions import BatchFailed
from worker.metrics import BatchMetrics
from worker.observability import LOGGER_NAME
from worker.outcomes import Decision, Outcome
from worker.processing import before_the_receive_limit, decide, decide_async, held_for_order, runs_together
from worker.record import SqsRecord
from worker.runtime import Runtime
from worker.tracing import BatchTracing, JobTrace
from worker.transport import carry_out, change_visibility, delete, send_released

log = logging.getLogger(LOGGER_NAME)


def process_batch(event: dict[str, Any], context: Any, runtime: Runtime) -> dict[str, list[dict[str, str]]]:
    """The Lambda response for one SQS event: the records to return to the queue.

    Raises BatchFailed (after settling every record) when the database could not be reached.
    """
    records = [SqsRecord.of(raw) for raw in event.get("Records") or []]
    metrics = BatchMetrics(runtime.config.service, log_level=runtime.config.log_level)
    results: list[tuple[SqsRecord, Decision]] = []
    durations: list[float] = []  # each record's whole time in the worker, for its log line
    traces: list[JobTrace] = []  # each record's span and the trace ids its log lines carry
    ended: list[int] = []  # when each record's work ended (its span's end, set when it is reported)
    runtime.expire_old_secret()
    database_down = _database_problem(runtime) if records else None
    tracing = BatchTracing.of(runtime.config.tracing, runtime.config.queue_url.rsplit("/", 1)[-1])
    invocation = tracing.invocation(context)
    completion: Completion = (
        BatchedCompletion(runtime, records, invocation)
        if runtime.config.completion == BATCHED
        else DeferredCompletion(runtime, records, invocation)
    )
    held_groups: set[str] = set()  # FIFO: groups whose earlier record of this batch was not acknowledged
    loop = InvocationLoop()  # an async def handler's (worker/event_loop.py), made at the first one
    later: list[tuple[int, JobTrace]] = []  # the async jobs run together after the rest (by place in the batch)
    settled: list[_Settled | None] = [None] * len(records)  # by place in the batch
    try:
        with completion.kept_alive():  # its messages invisible and its claims stamped, however long it runs
            for index, record in enumerate(records):
                started = time.perf_counter()
                trace = tracing.start_job(record)
                if database_down is None and runs_together(runtime, record):
                    later.append((index, trace))  # its turn comes below, beside the other async jobs
                    continue
                if database_down is not None:
                    decision = Decision(Outcome.UNAVAILABLE, record.message_id, error=database_down)
                elif record.group is not None and record.group in held_groups:
                    decision = held_for_order(record)
                else:
                    for first_try in (True, False):
                        decided = decide(record, context, runtime, completion, trace, run_coroutine=loop.run)
                        decision = carry_out(runtime, record, decided)
                        refused = first_try and decision.cause == "auth"
                        if not (refused and runtime.refresh_secret("the database refused the credentials")):
                            break  # else once more, with the new password
                    if decision.outcome is Outcome.UNAVAILABLE:
                        database_down = decision.error
                if record.group is not None and not decision.acknowledged:
                    held_groups.add(record.group)
                settled[index] = (decision, (time.perf_counter() - started) * 1000, trace, time.time_ns())
            if later and database_down is None:
                jobs = [(records[index], trace) for index, trace in later]
                for (index, _), outcome in zip(
                    later, loop.run(_run_together(jobs, context, runtime, completion)), strict=True
                ):
                    if database_down is None and outcome[0].outcome is Outcome.UNAVAILABLE:
                        database_down = outcome[0].error
                    settled[index] = outcome
            for index, trace in later:
                if settled[index] is None:  # its turn never came: the database went away before it
                    unrun = Decision(Outcome.UNAVAILABLE, records[index].message_id, error=database_down)
                    settled[index] = (unrun, 0.0, trace, time.time_ns())
            for record, outcome in zip(records, settled, strict=True):
                assert outcome is not None
                results.append((record, outcome[0]))
                durations.append(outcome[1])
                traces.append(outcome[2])
                ended.append(outcome[3])
            # The success still held is completed now; with the database gone, its record returns to the queue.
            if database_down is not None:
                completion.abandon(database_down)
            else:
                try:
                    completion.flush()
                except DatabaseUnavailable as err:
                    database_down = str(err)
                except Exception:  # the held record was returned to the queue with the reason; the batch goes on
                    log.exception("worker error while completing the batch's last job")
    finally:
        loop.close()
    # Every outcome is final only now (the last success completes here): requeue, delay and send, then log
    # and count what each record became.
    for index, (record, decision) in enumerate(results):
        final = before_the_receive_limit(record, completion.final(decision), runtime.config)
        results[index] = (record, carry_out(runtime, record, final))
    change_visibility(
        runtime,
        [(r, d.visibility_seconds) for r, d in results if not d.acknowledged and d.visibility_seconds is not None],
    )
    turns = [d.turn for _, d in results if d.turn is not None]  # after every completion above: their slots are free
    send_released(runtime, [*completion.released, *(job_id for _, d in results for job_id in d.released)], turns)
    for (_, final), duration_ms, trace, ended_ns in zip(results, durations, traces, ended, strict=True):
        trace.mark_ended(ended_ns)
        trace.report(final, duration_ms)
        metrics.record(final)
    metrics.flush()
    if database_down is not None:
        delete(runtime, [r for r, d in results if d.acknowledged])
        raise BatchFailed(f"{database_down}; {len(results)} record(s) settled, the unfinished ones return to the queue")
    return {"batchItemFailures": [{"itemIdentifier": d.message_id} for _, d in results if not d.acknowledged]}


#: A record's outcome in its batch: its decision, its whole time (ms), its trace, and when its work ended (ns).
_Settled = tuple[Decision, float, JobTrace, int]


async def _run_together(
    jobs: list[tuple[SqsRecord, JobTrace]], context: Any, runtime: Runtime, completion: Completion
) -> list[_Settled]:
    """The batch's second phase (worker/processing.py: runs_together): each record in a task of its own on the
    invocation's loop, their handlers' awaits overlapping; each record's decision, whole time, and trace, in
    their order."""

    async def one(record: SqsRecord, trace: JobTrace) -> _Settled:
        started = time.perf_counter()
        for first_try in (True, False):
            decision = carry_out(runtime, record, await decide_async(record, context, runtime, completion, trace))
            refused = first_try and decision.cause == "auth"
            if not (refused and runtime.refresh_secret("the database refused the credentials")):
                break  # else once more, with the new password
        return decision, (time.perf_counter() - started) * 1000, trace, time.time_ns()

    return list(await asyncio.gather(*(one(record, trace) for record, trace in jobs)))


def process_record(record: dict[str, Any], context: Any, runtime: Runtime) -> Decision:
    """One record outside a batch (tests, tools): decided, carried out and completed before this returns."""
    view = SqsRecord.of(record)
    tracing = BatchTracing.of(runtime.config.tracing)
    completion = DeferredCompletion(runtime, invocation=tracing.invocation(context))
    trace = tracing.start_job(view)
    loop = InvocationLoop()
    try:
        decision = carry_out(runtime, view, decide(view, context, runtime, completion, trace, run_coroutine=loop.run))
    finally:
        loop.close()
    trace.mark_ended()
    with contextlib.suppress(Exception):  # an unconfirmed completion returns the record: final() says why
        completion.flush()
    send_released(runtime, [*completion.released, *decision.released], [decision.turn] if decision.turn else [])
    final = completion.final(decision)
    trace.finish(final)
    return final


def _database_problem(runtime: Runtime) -> str | None:
    """Build the database handle (reading the secret on first use); the reason if that is impossible."""
    try:
        runtime.db  # noqa: B018 - the cached property connects lazily; building it reads the secret
    except (DatabaseUnavailable, ConfigError) as err:
        return redact(str(err))
    return None
