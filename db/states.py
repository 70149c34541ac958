"""The job's derived states, each defined once, in the three forms the code needs.

A row has a `status`; what the code decides on is a state derived from it and its counters: a job whose
attempts are spent, one that failed for good, one that finished (nothing will run it again by itself), one
that is due, one a delivery may claim. Each is written here as SQL text (the hand-written statements that
run behind a transaction-mode pooler are text), as a SQLAlchemy expression over a table (Core queries), and
as a Python predicate (a `Job` in hand). The three forms sit side by side, so a change to a rule changes all
of them in one place, and tests/db/test_states.py runs each over the same rows on both databases and
requires the three answers to agree. The same test fails if a rule's own text appears anywhere else.

The states that depend on the clock name their bind parameters `:due_by` (due), `:stale_before` and
`:silent_before` (stale: started, or last heard of, before then), and their other forms take the same values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_
from sqlalchemy.sql.expression import FromClause

from .models import JobStatus, jobs_table

_PENDING, _PROCESSING = JobStatus.PENDING.value, JobStatus.PROCESSING.value
_FAILED, _COMPLETED, _CANCELLED = JobStatus.FAILED.value, JobStatus.COMPLETED.value, JobStatus.CANCELLED.value


def _status(job: Any) -> str:
    status = job.status
    return str(status.value if isinstance(status, JobStatus) else status)


@dataclass(frozen=True)
class State:
    """A derived state: `sql()` for text statements (with a table alias if the statement joins), `clause()`
    for Core, and the state itself as a predicate on a job (any object with the row's attributes)."""

    name: str
    template: str  # SQL, `{a}` standing for the table alias and its dot
    core: Callable[..., ColumnElement[bool]]
    python: Callable[..., bool]

    def sql(self, alias: str = "") -> str:
        return "(" + self.template.format(a=f"{alias}." if alias else "") + ")"

    def clause(self, *, table: FromClause = jobs_table, **clock: datetime) -> ColumnElement[bool]:
        return self.core(table.c, **clock)

    def __call__(self, job: Any, **clock: datetime) -> bool:
        return self.python(job, **clock)


def spent(attempts: int, max_attempts: int) -> bool:
    """No attempt left: the Python form of SPENT, for callers holding the two numbers (a handler's context)."""
    return attempts >= max_attempts


#: Every attempt used. A retryable job in this state is exhausted; a failed one has failed for good.
SPENT = State(
    "spent",
    "{a}attempts >= {a}max_attempts",
    lambda c: c.attempts >= c.max_attempts,
    lambda job: spent(job.attempts, job.max_attempts),
)

#: An attempt left: SPENT's negation, written as the comparison the claim's partial indexes name.
HAS_ATTEMPTS = State(
    "has attempts left",
    "{a}attempts < {a}max_attempts",
    lambda c: c.attempts < c.max_attempts,
    lambda job: not spent(job.attempts, job.max_attempts),
)

#: Failed, with no attempt left: only an operator's `jobstack retry` runs it again (it dead-lettered).
FAILED_FOR_GOOD = State(
    "failed for good",
    f"{{a}}status = '{_FAILED}' AND {SPENT.template}",
    lambda c: and_(c.status == _FAILED, SPENT.core(c)),
    lambda job: _status(job) == _FAILED and SPENT(job),
)

#: Nothing will run the job again by itself: completed, cancelled, or failed for good. What a job that
#: waits for it (a workflow's dependent) counts as settled.
FINISHED = State(
    "finished",
    f"{{a}}status IN ('{_COMPLETED}', '{_CANCELLED}') OR ({FAILED_FOR_GOOD.template})",
    lambda c: or_(c.status.in_([_COMPLETED, _CANCELLED]), FAILED_FOR_GOOD.core(c)),
    lambda job: _status(job) in (_COMPLETED, _CANCELLED) or FAILED_FOR_GOOD(job),
)

#: Pending, and its run_at (if any) no later than :due_by (now plus the clock tolerance).
DUE = State(
    "due",
    f"{{a}}status = '{_PENDING}' AND ({{a}}run_at IS NULL OR {{a}}run_at <= :due_by)",
    lambda c, due_by: and_(c.status == _PENDING, or_(c.run_at.is_(None), c.run_at <= due_by)),
    lambda job, due_by: _status(job) == _PENDING and (job.run_at is None or job.run_at <= due_by),
)

#: Processing, and the invocation holding it looks dead: silent since before :silent_before (the heartbeat its
#: claim and then worker/heartbeat.py stamp), or, never stamped (a claim by a worker from before heartbeats),
#: started before :stale_before. Never NULL (the last `false`). One COALESCE rather than two guarded branches:
#: the claim statements are planned anew on every call behind a pooler, and the planner estimates every
#: comparison of every branch (docs/benchmarks.md, side by side).
STALE = State(
    "stale",
    f"{{a}}status = '{_PROCESSING}' AND COALESCE({{a}}heartbeat_at < :silent_before, "
    "{a}started_at < :stale_before, false)",
    lambda c, stale_before, silent_before: and_(
        c.status == _PROCESSING,
        func.coalesce(c.heartbeat_at < silent_before, c.started_at < stale_before, false()),
    ),
    lambda job, stale_before, silent_before: (
        _status(job) == _PROCESSING
        and (
            job.heartbeat_at < silent_before
            if job.heartbeat_at is not None
            else job.started_at is not None and job.started_at < stale_before
        )
    ),
)

#: Failed, or stale (its invocation died): another attempt may take it.
RETRYABLE = State(
    "retryable",
    f"{{a}}status = '{_FAILED}' OR ({STALE.template})",
    lambda c, stale_before, silent_before: or_(
        c.status == _FAILED, STALE.core(c, stale_before=stale_before, silent_before=silent_before)
    ),
    lambda job, stale_before, silent_before: (
        _status(job) == _FAILED or STALE(job, stale_before=stale_before, silent_before=silent_before)
    ),
)

#: THE CLAIM RULE: due, or retryable with attempts left.
CLAIMABLE = State(
    "claimable",
    f"({DUE.template}) OR (({RETRYABLE.template}) AND {HAS_ATTEMPTS.template})",
    lambda c, due_by, stale_before, silent_before: or_(
        DUE.core(c, due_by=due_by),
        and_(RETRYABLE.core(c, stale_before=stale_before, silent_before=silent_before), HAS_ATTEMPTS.core(c)),
    ),
    lambda job, due_by, stale_before, silent_before: (
        DUE(job, due_by=due_by)
        or (RETRYABLE(job, stale_before=stale_before, silent_before=silent_before) and HAS_ATTEMPTS(job))
    ),
)

#: Retryable with no attempt left: never claimed again until an operator gives it new attempts.
EXHAUSTED = State(
    "exhausted",
    f"({RETRYABLE.template}) AND {SPENT.template}",
    lambda c, stale_before, silent_before: and_(
        RETRYABLE.core(c, stale_before=stale_before, silent_before=silent_before), SPENT.core(c)
    ),
    lambda job, stale_before, silent_before: (
        RETRYABLE(job, stale_before=stale_before, silent_before=silent_before) and SPENT(job)
    ),
)

STATES = (SPENT, HAS_ATTEMPTS, FAILED_FOR_GOOD, FINISHED, DUE, STALE, RETRYABLE, CLAIMABLE, EXHAUSTED)
