"""One run's durable steps (`ctx.step`) and progress (`ctx.progress`), for worker/processing.py's handlers.

Steps are numbered in the order the handler calls them. The job's journal (db/steps.py) is read once, at
the first step: a step it holds at that place, under that name, is not run again, its journaled result is
returned; a step it holds under another name means the handler's steps changed since the job started, and
the run stops with one line saying so rather than hand a step another step's result. A new step runs and
is journaled when it returns: at least once (an invocation that dies between the step and its journal row
runs it again), or, with `transactional=True`, exactly once for its database writes, which commit with
its journal row.

Before a new step, the run checks the invocation's time: with less left than the longest step so far (and
the handler's start margin), it stops at this boundary with `Slice`, and the job continues from this step
in a later invocation, its attempt given back. A job sliced for longer than its type's `max_duration`
fails instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from db import DB
from db.clock import utcnow
from db.lifecycle import encode_result
from db.steps import PROGRESS_MESSAGE_MAX, STEP_NAME_MAX, Step, journal, record_step, report_progress
from db.waits import Signal, check_key, check_timeout, take_kept
from worker.exceptions import Slice, Wait

#: A step not journaled yet (its journaled result may be None).
_NEW = object()

#: Progress is stored at most this often (plus its first and its last, 1.0, report): one UPDATE each.
PROGRESS_MIN_SECONDS = 1.0
#: How long a job sliced across invocations may take in all, unless its type says (`@job(max_duration_seconds=)`).
DEFAULT_MAX_DURATION = timedelta(days=1)


class StepsChanged(Exception):
    """The journal holds another step at this place: the handler's steps changed since the job started."""


class StepLost(Exception):
    """A step finished after another invocation took the job over: not journaled (a transactional step's
    writes roll back with it); the other invocation's run stands."""


class MaxDurationExceeded(Exception):
    """A job sliced across invocations ran longer in all than its type's `max_duration`."""


class StepRunner:
    """The steps and progress of one run of one job (a new one per attempt or slice)."""

    def __init__(
        self,
        db: DB,
        job_id: UUID,
        attempt: int,
        *,
        remaining_ms: Callable[[], int],
        start_margin: timedelta,
        max_duration: timedelta | None = None,
        transactional_handler: bool = False,
    ) -> None:
        self.db, self.job_id, self.attempt = db, job_id, attempt
        self._remaining_ms, self._margin = remaining_ms, start_margin
        self._max_duration = max_duration or DEFAULT_MAX_DURATION
        self._transactional_handler = transactional_handler
        self._journal: list[Step] | None = None
        self._names: set[str] = set()
        self._next = 0
        self._ran_here = 0  # steps run (not replayed) by this invocation
        self._longest = timedelta(0)
        self._progress_at: float | None = None
        self._sleeps = 0

    def step(self, name: str, fn: Callable[..., Any], *, transactional: bool = False) -> Any:
        """`fn`'s result, run once for this job: from the journal if a run before this one completed it."""
        self._check_name(name)
        if self._transactional_handler:
            raise RuntimeError(
                f"step {name!r}: a transactional handler commits only when it returns, so its steps could not "
                "be journaled as they finish: register it without transactional=True and pass "
                "transactional=True to the steps that write"
            )
        position, done = self._next, self._done()
        self._next += 1
        if position < len(done):
            return self._replayed(done[position], name, position)
        if name in {step.name for step in done}:
            raise StepsChanged(self._changed(name, position, done))
        self._check_time(name)
        return self._run(name, position, fn, transactional)

    def wait(self, key: str, timeout: timedelta, delivered: Any) -> Signal:
        """The signal this job waits for at this step: from the journal (a later run), from its row (the signal
        that released it, `delivered`), or kept for the key before the wait (taken and journaled in one
        transaction); else Wait: the job waits in the database until a signal or `timeout`."""
        name = f"wait:{check_key(key)}"
        check_timeout(timeout)
        position, replayed = self._place(name)
        if replayed is not _NEW:
            return Signal.from_result(replayed)
        started_at = utcnow()
        if isinstance(delivered, dict) and delivered.get("key") == key:
            signal = Signal.from_result(delivered)
            self._record(self.db, name, position, encode_result(signal.as_result()), started_at)
        else:
            with self.db.begin() as conn:
                kept = take_kept(conn, key)
                if kept is None:
                    raise Wait(key, started_at + timeout)
                signal = kept
                self._record(conn, name, position, encode_result(signal.as_result()), started_at)
        self._journaled_here(position, name, signal.as_result(), started_at)
        return signal

    def sleep(self, until: datetime) -> None:
        """Return once `until` has passed: the first run journals the time and waits (Wait with no key), a
        later one, released at that time, finds it in the journal and goes on. Named `sleep:N`, N counting this
        job's sleeps in order."""
        self._sleeps += 1
        name = f"sleep:{self._sleeps}"
        position, replayed = self._place(name)
        if replayed is _NEW:
            started_at = utcnow()
            recorded = {"until": until.isoformat()}
            self._record(self.db, name, position, encode_result(recorded), started_at)
            self._journaled_here(position, name, recorded, started_at)
        else:
            until = datetime.fromisoformat(replayed["until"])
        if utcnow() < until:
            raise Wait(None, until)

    def _place(self, name: str) -> tuple[int, Any]:
        """This step's place, and its journaled result if a run before this one completed it (else _NEW)."""
        self._check_name(name)
        if self._transactional_handler:
            raise RuntimeError(
                f"{name!r}: a transactional handler commits only when it returns, so it cannot wait: register it "
                "without transactional=True and pass transactional=True to the steps that write"
            )
        position, done = self._next, self._done()
        self._next += 1
        if position < len(done):
            return position, self._replayed(done[position], name, position)
        if name in {step.name for step in done}:
            raise StepsChanged(self._changed(name, position, done))
        return position, _NEW

    def _journaled_here(self, position: int, name: str, result: Any, started_at: datetime) -> None:
        self._done().append(Step(position, name, json.dumps(result), self.attempt, started_at, utcnow()))

    def progress(self, fraction: float, message: str | None = None) -> bool:
        """Store what the job reports (throttled): True if this report was written."""
        if not 0 <= fraction <= 1:
            raise ValueError(f"progress takes a fraction from 0 to 1, got {fraction}")
        if self._transactional_handler:
            raise RuntimeError(
                "progress is written at once, outside the job's transaction: a transactional handler cannot "
                "report it (report it from a handler with transactional steps instead)"
            )
        now = time.monotonic()
        due = self._progress_at is None or now - self._progress_at >= PROGRESS_MIN_SECONDS or fraction == 1
        if not due:
            return False
        self._progress_at = now
        text = None if message is None else message[:PROGRESS_MESSAGE_MAX]
        return report_progress(self.db, self.job_id, attempt=self.attempt, progress=fraction, message=text)

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name or len(name) > STEP_NAME_MAX:
            raise ValueError(f"a step's name is 1 to {STEP_NAME_MAX} characters, got {name!r}")
        if name in self._names:
            raise ValueError(f"step {name!r} was already run by this job: give each step of a job its own name")
        self._names.add(name)

    def _done(self) -> list[Step]:
        if self._journal is None:
            self._journal = journal(self.db, self.job_id)
        return self._journal

    def _replayed(self, step: Step, name: str, position: int) -> Any:
        if step.name != name:
            raise StepsChanged(self._changed(name, position, self._done()))
        self._longest = max(self._longest, step.finished_at - step.started_at)
        return None if step.result is None else json.loads(step.result)

    def _changed(self, name: str, position: int, done: list[Step]) -> str:
        ran = ", ".join(repr(step.name) for step in done)
        return (
            f"step {position + 1} is {name!r} now, but this job's journal holds {ran}: its steps changed since it "
            f"started; finish it with the code it started with, or `jobstack retry {self.job_id} --from-scratch`"
        )

    def _check_time(self, name: str) -> None:
        """Stop at this boundary (Slice) when the invocation could not finish the next step; fail past the
        type's max_duration."""
        done = self._done()
        if done and utcnow() - _running_since(done) > self._max_duration:
            raise MaxDurationExceeded(
                f"the job has run for longer than its max_duration ({int(self._max_duration.total_seconds())} s) "
                "since its first step: raise @job(max_duration_seconds=...) or split the work"
            )
        if self._ran_here == 0:  # the first new step of an invocation always runs: a slice must make progress
            return
        left = timedelta(milliseconds=self._remaining_ms())
        needed = self._margin + self._longest
        if left < needed:
            raise Slice(
                f"continues in a later invocation from step {name!r}: {left.total_seconds():.1f} s left, "
                f"{needed.total_seconds():.1f} s needed (the longest step so far plus the start margin)"
            )

    def _run(self, name: str, position: int, fn: Callable[..., Any], transactional: bool) -> Any:
        started_at, started = utcnow(), time.perf_counter()
        if transactional:
            with self.db.begin() as conn:
                result = encode_result(fn(conn))
                self._record(conn, name, position, result, started_at)
        else:
            result = encode_result(fn())
            self._record(self.db, name, position, result, started_at)
        self._ran_here += 1
        self._longest = max(self._longest, timedelta(seconds=time.perf_counter() - started))
        done = self._done()
        done.append(Step(position, name, result, self.attempt, started_at, utcnow()))
        return None if result is None else json.loads(result)

    def _record(self, db: DB | Connection, name: str, position: int, result: str | None, started: datetime) -> None:
        written = record_step(
            db, self.job_id, attempt=self.attempt, position=position, name=name, result=result, started_at=started
        )
        if not written:
            raise StepLost(
                f"step {name!r} finished after another invocation took the job over: not journaled"
                + (", its writes rolled back" if isinstance(db, Connection) else "")
            )


def _running_since(done: list[Step]) -> datetime:
    """When the job's current stretch of work began: its first step, or the end of its latest wait or sleep
    (time spent waiting in the database is not running time, and does not count toward max_duration)."""
    since = done[0].started_at
    for step in done:
        if step.name.startswith("wait:"):
            since = max(since, step.finished_at)
        elif step.name.startswith("sleep:") and step.result:
            since = max(since, datetime.fromisoformat(json.loads(step.result)["until"]))
    return since


def unjournaled(name: str, fn: Callable[..., Any], db: DB | None, transactional: bool) -> Any:
    """A step outside the worker (a handler called directly in a test): run, not journaled."""
    if not transactional:
        return fn()
    if db is None:
        raise RuntimeError(f"step {name!r} is transactional: it needs the context's database")
    with db.begin() as conn:
        return fn(conn)
