"""What the console's buttons do: retry, cancel and redrive, through the CLI's own code, each in two steps:
a preview that counts what it would touch (shown on the confirmation page), then the change itself.

A bulk action takes a filter, as the job list shows it, and touches at most ACTION_LIMIT jobs: a button
must not become a statement over millions of rows; the confirmation says when the limit cuts it short.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from cli import audit_trail, queue_state, summaries
from cli import dlq as dead_letters
from cli.cancelling import cancel_and_send
from cli.console.sources import PoolQueues, Sources
from cli.retrying import RetryReport, retry_jobs
from db import CancelReport, signal_now
from db.admin import JobFilter, count_matching, page_jobs
from db.audit import Action as Done
from db.audit import describe_filter, describe_ids
from db.waits import Sent

#: The most jobs one click retries or cancels (the rest stay as they are, and the result says so).
ACTION_LIMIT = 1000
#: The most dead letters one redrive moves, as `jobstack dlq redrive`'s default --limit.
REDRIVE_LIMIT = 1000


class Action(StrEnum):
    RETRY = "retry"
    CANCEL = "cancel"
    REDRIVE = "redrive"
    PAUSE = "pause"
    RESUME = "resume"
    SIGNAL = "signal"


@dataclass(frozen=True)
class Selection:
    """The jobs an action is for: given ids, or the jobs a filter matches (at most ACTION_LIMIT)."""

    ids: tuple[UUID, ...] = ()
    which: JobFilter | None = None

    def pages(self, sources: Sources) -> Iterator[list[UUID]]:
        if self.ids:
            yield list(self.ids)
            return
        assert self.which is not None
        left, after = ACTION_LIMIT, None
        while left > 0:
            page = page_jobs(sources.db, self.which, after=after, limit=min(left, 500))
            if not page.jobs:
                return
            yield [j.id for j in page.jobs]
            left -= len(page.jobs)
            if page.next is None:
                return
            after = page.next

    def describe(self) -> str:
        """What was asked, for the audit trail (db/audit.py): never a payload."""
        return describe_ids([str(i) for i in self.ids]) if self.ids else describe_filter(self.which or JobFilter())

    def count(self, sources: Sources) -> tuple[int, bool]:
        """How many jobs the action would touch, and whether ACTION_LIMIT cut the selection short."""
        if self.ids:
            return len(self.ids), False
        assert self.which is not None
        found = count_matching(sources.db, self.which, limit=ACTION_LIMIT)
        return min(found, ACTION_LIMIT), found > ACTION_LIMIT


def retry(sources: Sources, selection: Selection) -> RetryReport:
    """As `jobstack retry`: fresh attempts and a new message, refused for jobs a retry would duplicate."""
    report = retry_jobs(sources.db, sources.target.destination, selection.pages(sources))
    _audit(sources, "retry", len(report.retried), selection.describe(), summaries.retried(report)[0])
    return report


def cancel(sources: Sources, selection: Selection) -> CancelReport:
    """As `jobstack cancel`: waiting jobs never run, running ones are asked to stop, finished ones refused."""
    report = cancel_and_send(sources.db, sources.target, selection.pages(sources))
    touched = len(report.cancelled) + len(report.asked_to_stop)
    _audit(sources, "cancel", touched, selection.describe(), summaries.cancelled(report)[0])
    return report


def redrive(sources: Sources, pool: PoolQueues, kind: str) -> dead_letters.RedriveReport:
    """As `jobstack dlq redrive --kind KIND`: the letters of one kind back to the pool's queue, bounded."""
    if not pool.dlq_url or not pool.queue_url:
        raise ValueError(f"pool {pool.name} has no queues here: start the console with --env or --queue-url/--dlq-url")
    report = dead_letters.redrive(
        sources.client("sqs"),
        sources.db,
        pool.dlq_url,
        pool.queue_url,
        limit=REDRIVE_LIMIT,
        only=frozenset({kind}),
    )
    outcome = f"moved {report.moved_total} dead letter(s); {len(report.requeued_jobs)} job(s) given fresh attempts"
    _audit(sources, "redrive", report.moved_total, f"pool {pool.name}, kind {kind}", outcome)
    return report


def set_worker(sources: Sources, pool: PoolQueues, *, enabled: bool) -> str:
    """As `jobstack pause|resume --pool POOL`: the pool's event source mapping disabled or enabled; its state."""
    mapping_id = mapping_of(sources, pool)
    state = queue_state.set_worker(sources.target, mapping_id, enabled=enabled)
    action = Action.RESUME if enabled else Action.PAUSE
    _audit(sources, action.value, 0, f"pool {pool.name}, mapping {mapping_id}", state)
    return state


def mapping_of(sources: Sources, pool: PoolQueues) -> str:
    """The pool's event source mapping; ValueError (one line) where no deployed stack names one."""
    mapping_id = sources.target.output("EventSourceMappingId", pool.name) if sources.target.env else None
    if not mapping_id:
        raise ValueError(f"pool {pool.name} has no deployed worker here: start the console with --env ENV")
    return mapping_id


def _audit(sources: Sources, action: str, jobs: int, selection: str, outcome: str) -> None:
    audit_trail.record(sources.target, Done("console", action, jobs, selection, outcome))


def signal(sources: Sources, key: str, payload: object) -> Sent:
    """As `jobstack signal KEY`: the jobs waiting on the key resume with the payload, or it is kept for the
    first wait on it; committed at once, the released jobs sent."""
    sent = signal_now(sources.db, key, payload, queue=sources.target.destination)
    _audit(sources, Action.SIGNAL.value, len(sent.released), f"signal {key}", summaries.signal_outcome(sent)[:200])
    return sent
