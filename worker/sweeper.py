"""The sweeper: a scheduled Lambda entry (`worker.sweeper.handler`) that repairs what delivery missed.

- Jobs whose message is gone are sent again, each rule waiting a window derived from the queue's settings
  (db.relay.ResendWindows), and each send recorded in `sent_at`, so a backlogged queue is never
  multiplied: a `pending` job whose send was never confirmed (the outbox relay), or whose message must
  have expired; a job that failed with attempts left, or whose invocation died, and whose message has
  not come back (SQS's redrive took it, say, after throttled receives).
- `processing` jobs whose invocation died on their last attempt are marked failed ("abandoned"), and the jobs
  waiting for them settled (cancelled, or released); so are the dependents of any job that finished while
  its process died before settling them (db/dependencies.py).
- `completed` and exhausted `failed` rows past their retention are deleted, in bounded batches, one after
  another for up to PRUNE_SECONDS a run (less if the invocation ends sooner).
- Scheduled fires that could not publish their job (the ScheduleFailures queue) are published again
  (worker/periodic.py).

Safe to run twice, or concurrently: choosing and marking a job to re-send is one conditional UPDATE, every
other change is conditional too, and a duplicate message is harmless to the worker. It imports no job
handler: it never runs one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from db import (
    DB,
    JobStatus,
    abandoned_jobs,
    fail_job,
    prune_jobs,
    resend,
    take_due,
    take_for_resend,
    unmark_sent,
    unrelease,
    utcnow,
)
from db.dependencies import settle, unsettled_finished
from db.publishing import send_released
from db.relay import mark_sent
from db.sqs_limits import SQS_MAX_DELAY_SECONDS
from db.tenant_turns import parked_turns
from db.waits import time_out
from worker.config import WorkerConfig
from worker.observability import LOGGER_NAME
from worker.outcomes import ABANDONED
from worker.periodic import replay_failed_fires
from worker.runtime import Runnable, Runtime, current

log = logging.getLogger(LOGGER_NAME)
#: How long one run may prune: bounded statements, one after another, until the history past retention is
#: gone or this much time has passed (a first run on a large table catches up over several runs). At the
#: 50,000 rows/s measured on a 10,000,000-row table (bench/table_scale.py), a run every 5 minutes keeps up
#: with 10,000 completed jobs/s; ten statements per run, as before, kept up with 33.
PRUNE_SECONDS = 60.0
#: Left for the rest of the run when the function's own deadline is nearer than PRUNE_SECONDS.
DEADLINE_RESERVE_SECONDS = 20.0


@dataclass
class SweepReport:
    resent: dict[str, list[UUID]] = field(default_factory=dict)  # by the status the job had
    abandoned: list[UUID] = field(default_factory=list)
    released: list[UUID] = field(default_factory=list)  # scheduled jobs now due within SQS's delay
    send_failures: dict[UUID, str] = field(default_factory=dict)
    pruned: dict[str, int] = field(default_factory=dict)
    fires_replayed: int = 0
    fires_still_failing: int = 0
    #: Finished jobs whose dependents were never settled (a worker died between a failure and settling).
    settled: int = 0
    #: Jobs whose wait for a signal timed out (db/waits.py): resumed with the timeout result.
    timed_out: list[UUID] = field(default_factory=list)
    #: Parked jobs released because their tenant had free slots nobody released (db/tenant_turns.py).
    turns: list[UUID] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            **{f"resent_{status}": len(ids) for status, ids in sorted(self.resent.items())},
            "abandoned": len(self.abandoned),
            "released": len(self.released),
            "send_failures": len(self.send_failures),
            **{f"pruned_{status}": n for status, n in sorted(self.pruned.items())},
            "fires_replayed": self.fires_replayed,
            "fires_still_failing": self.fires_still_failing,
            "settled": self.settled,
            "waits_timed_out": len(self.timed_out),
            "turns_released": len(self.turns),
        }


def prune_deadline(context: Any) -> float:
    """When pruning stops (time.monotonic()): PRUNE_SECONDS from now, or sooner if the invocation ends."""
    budget = PRUNE_SECONDS
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is not None:
        budget = min(budget, remaining() / 1000 - DEADLINE_RESERVE_SECONDS)
    return time.monotonic() + max(budget, 0.0)


def sweep(runtime: Runtime, *, now: datetime | None = None, prune_until: float | None = None) -> SweepReport:
    config, db = runtime.config, runtime.db
    now = now or utcnow()
    report = SweepReport()

    destination = config.destination(runtime.sqs)
    sweeps = config.pool_sweeps()  # each pool's windows follow from its own timeout and queue
    for windows, job_types in sweeps:
        stale = abandoned_jobs(db, windows.stale_after, limit=config.sweep_batch_limit, now=now, job_types=job_types)
        for job in stale:
            if fail_job(db, job.id, ABANDONED, attempt=job.attempts, now=now):
                report.abandoned.append(job.id)
    settle(db, report.abandoned, now=now)  # failed for good: their dependents are settled (sent below)

    settle_left_over(runtime, report, now=now)
    release(runtime, report, now=now)
    time_out_waits(runtime, report, now=now)
    release_turns_left(runtime, report, now=now)

    for windows, job_types in sweeps:
        due = take_for_resend(db, windows, limit=config.sweep_batch_limit, now=now, job_types=job_types)
        if not due:
            continue
        failures = resend(due, queue=destination)
        unmark_sent(db, list(failures))
        report.send_failures.update(failures)
        for job in due:
            if job.id not in failures:
                report.resent.setdefault(job.status.value, []).append(job.id)

    report.pruned = prune(db, config, now=now, until=prune_until)
    if config.schedule_failures_url:
        replayed = replay_failed_fires(runtime, config.schedule_failures_url)
        report.fires_replayed, report.fires_still_failing = len(replayed.published), len(replayed.failed)
    return report


def settle_left_over(runtime: Runtime, report: SweepReport, *, now: datetime) -> None:
    """Jobs that finished (failed for good, cancelled) without their dependents being settled, because the
    process died in between: settled now. A dependent released here is pending and unsent, so the re-send
    below (its unsent window passed since) or the next sweep sends it; one cancelled cascades as usual."""
    left = unsettled_finished(runtime.db, limit=runtime.config.sweep_batch_limit)
    if left:
        settle(runtime.db, left, now=now)
        report.settled = len(left)


def release(runtime: Runtime, report: SweepReport, *, now: datetime) -> None:
    """Scheduled jobs due within SQS's 15-minute delay go out now, each with the rest of its wait as its
    DelaySeconds: a job runs at its run_at to the second, not at the next sweep. Every sweep (5 minutes by
    default, at most 14: the settings check it) looks 15 minutes ahead, so each job is released before it is
    due; after downtime, overdue jobs go out at once. A refused send puts the job back for the next sweep.
    """
    config = runtime.config
    horizon = now + timedelta(seconds=SQS_MAX_DELAY_SECONDS)
    due = take_due(runtime.db, horizon=horizon, limit=config.sweep_batch_limit, now=now)
    if not due:
        return
    failures = resend(due, queue=config.destination(runtime.sqs), now=now)
    unrelease(runtime.db, list(failures))
    report.send_failures.update(failures)
    report.released += [j.id for j in due if j.id not in failures]


def time_out_waits(runtime: Runtime, report: SweepReport, *, now: datetime) -> None:
    """Waits past their timeout resume with the timeout result, their messages sent now; a refused send leaves
    the row pending and unsent, which the re-send below (its unsent window passed) or a later sweep sends."""
    timed_out = time_out(runtime.db, limit=runtime.config.sweep_batch_limit, now=now)
    if not timed_out:
        return
    failures = resend(timed_out, queue=runtime.config.destination(runtime.sqs), now=now)
    sent = [j.id for j in timed_out if j.id not in failures]
    mark_sent(runtime.db, sent, now=now)
    report.send_failures.update(failures)
    report.timed_out += [j.id for j in timed_out]


def release_turns_left(runtime: Runtime, report: SweepReport, *, now: datetime) -> None:
    """Tenants' parked jobs with free slots that no batch released (its process died between a job's end and the
    release): released and sent now. A key whose limit no handler names any more releases all its jobs: nothing
    would release them otherwise."""
    turns = parked_turns(runtime.db, limit=runtime.config.sweep_batch_limit)
    if not turns:
        return
    from db.claiming.tenant_gate import TenantLimit, release_turns

    limits = {
        runnable.plan.tenant_limit.name: runnable.plan.tenant_limit
        for runnable in runtime.runnables.values()
        if isinstance(runnable, Runnable) and runnable.plan.tenant_limit is not None
    }
    config = runtime.config
    released: list[UUID] = []
    for turn in turns:
        limit = limits.get(turn.limit) or TenantLimit(turn.limit, (), running=config.sweep_batch_limit)
        released += release_turns(
            runtime.db, limit, turn.tenant, stale_after=config.stale_after,
            silent_after=config.silent_after or config.stale_after, now=now,
        )  # fmt: skip
    if not released:
        return
    _, failures = send_released(runtime.db, released, queue=config.destination(runtime.sqs))  # as a batch sends them
    report.send_failures.update(failures)
    report.turns += released


def prune(
    db: DB, config: WorkerConfig, *, now: datetime, until: float | None = None, dry_run: bool = False
) -> dict[str, int]:
    """Delete history past its retention in bounded statements (each its own short transaction, no table
    lock), one after another until none is left or time.monotonic() passes `until` (default: PRUNE_SECONDS
    from now); each status gets at least one."""
    until = until if until is not None else time.monotonic() + PRUNE_SECONDS
    pruned: dict[str, int] = {}
    retention: dict[JobStatus, timedelta | None] = {
        JobStatus.COMPLETED: config.prune_completed_after,
        JobStatus.FAILED: config.prune_failed_after,
        JobStatus.CANCELLED: config.prune_failed_after,  # kept as long as failures: both are what went wrong
    }
    for status, keep in retention.items():
        if keep is None:
            continue
        total = 0
        while True:
            n = prune_jobs(db, status, now - keep, limit=config.prune_batch_limit, dry_run=dry_run)
            total += n
            if dry_run or n < config.prune_batch_limit or time.monotonic() >= until:
                break
        pruned[status.value] = total
    return pruned


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    report = sweep(current(), prune_until=prune_deadline(context))
    summary = report.summary()
    level = logging.ERROR if report.send_failures or report.fires_still_failing else logging.INFO
    log.log(level, "sweep finished", extra=summary)
    return summary
