"""`@job("type-name")`: registers the function that runs a job type, and the context it receives.

A handler is a plain function of one `JobContext`; it returns on success and raises on failure. The
worker owns everything else (claiming, retries, the DLQ, logging the outcome), so handlers stay short and
testable by calling them directly with a context.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from db import DB, ConfigError, cancel_requested, get_job_type
from db.clock import utcnow
from db.dependencies import Dependency, dependencies_of
from db.sqs_limits import SQS_MAX_DELAY_SECONDS
from db.states import spent
from db.waits import Signal
from worker.exceptions import FifoCannotWait, HandlerAlreadyRegistered, HandlerNotFound, Snooze
from worker.steps import StepRunner, unjournaled


@dataclass(frozen=True)
class JobContext:
    job_id: UUID
    type: str
    payload: dict[str, Any]  # the database row's payload, validated against the type's schema
    db: DB
    log: logging.LoggerAdapter[logging.Logger]  # bound to job_id, type and attempt
    attempt: int  # 1 for the first try
    max_attempts: int
    message_id: str
    _remaining_ms: Callable[[], int] = field(repr=False)
    #: A transactional handler's connection: open in the transaction that also completes the job.
    _conn: Connection | None = field(default=None, repr=False)
    #: Whether its steps are journaled (the worker's runs) or just run (a handler called directly in a test);
    #: the start margin and max_duration slicing uses; the run's StepRunner, made at its first step.
    _journaled: bool = field(default=False, repr=False)
    _start_margin: timedelta = field(default=timedelta(0), repr=False)
    _max_duration: timedelta | None = field(default=None, repr=False)
    _runner: list[StepRunner] = field(default_factory=list, repr=False, compare=False)
    #: What ended the job's last wait (its row's wait_result): the signal, or its timeout, for its wait step.
    _delivered: Any = field(default=None, repr=False)
    #: Its FIFO group (None: a standard pool's job): a wait would let the group's later jobs run before it.
    _ordering_key: str | None = field(default=None, repr=False)
    #: The customer the job is for (`tenant=` at publish; None: none given), e.g. to pick its credentials.
    tenant: str | None = None

    @property
    def conn(self) -> Connection:
        """The transaction this job completes in (`@job(..., transactional=True)` only): write through it and
        your writes commit with the job's completion, or not at all. Do not commit or roll it back."""
        if self._conn is None:
            raise RuntimeError(
                f"ctx.conn is open only for handlers registered with @job({self.type!r}, transactional=True)"
            )
        return self._conn

    def dependencies(self) -> list[Dependency]:
        """The jobs this one waited for (a group's members, a chain's previous step, `after=`), in the order
        they were given, with their status, result and error. One query, when called."""
        return dependencies_of(self._conn if self._conn is not None else self.db, self.job_id)

    def step(self, name: str, fn: Callable[..., Any], *, transactional: bool = False) -> Any:
        """Run `fn()` once for this job and return its result (JSON: stored, at most RESULT_MAX_BYTES): a
        retry, or a later invocation of a job too long for one, gets the stored result without running it.
        At least once: an invocation that dies before `fn`'s result is stored runs it again.
        `transactional=True`: `fn(conn)` writes through `conn`, and its writes commit with the stored result,
        or not at all (exactly once). Names are unique within a job; their order must not change while a
        job is unfinished. With too little time left for another step, the job continues in a later
        invocation from this one (its attempt given back)."""
        if not self._journaled:
            return unjournaled(name, fn, self.db, transactional)
        return self._steps().step(name, fn, transactional=transactional)

    def wait_for_signal(self, key: str, *, timeout: timedelta) -> Signal:
        """Wait for `signal(conn, key, payload)` from anywhere (a web app's transaction, `jobstack signal`), at
        most `timeout`: the invocation ends here and the job waits in the database, no message in flight and no
        function running; it resumes from this step when the signal commits (`Signal.payload`) or the timeout
        passes (`Signal.timed_out`). A step of its own (`wait:KEY`): a retry gets the same signal. A signal sent
        before the wait is kept for it (db/waits.py says for how long, and what one key wakes)."""
        if not self._journaled:
            raise RuntimeError(f"wait_for_signal({key!r}) needs the worker's journal: run the job through the worker")
        self._refuse_in_fifo(f"wait for signal {key!r}")
        return self._steps().wait(key, timeout, self._delivered)

    def sleep(self, duration: timedelta) -> None:
        """Go on after `duration`, with no function running meanwhile: the invocation ends here, and the job is
        released at its time (SQS's delay within 15 minutes, the sweeper beyond). Steps before it are not run
        again. `sleep_until` for a time."""
        self.sleep_until(utcnow() + duration)

    def sleep_until(self, when: datetime) -> None:
        if not self._journaled:
            raise RuntimeError("sleep needs the worker's journal: run the job through the worker")
        if when - utcnow() > timedelta(seconds=SQS_MAX_DELAY_SECONDS):
            self._refuse_in_fifo(f"sleep until {when:%Y-%m-%d %H:%M:%S} UTC (past SQS's 15-minute delay)")
        self._steps().sleep(when)

    def _refuse_in_fifo(self, what: str) -> None:
        """A FIFO pool's job keeps its message in flight while it runs, holding its group behind it; a wait deletes
        it, and the group's later jobs would run first. Refused: the job fails with this line (a snooze, or a
        sleep within 15 minutes, keeps the message and the order)."""
        if self._ordering_key is not None:
            raise FifoCannotWait(
                f"a FIFO pool's job cannot {what}: its group {self._ordering_key!r} would run its later jobs "
                "first; wait in a standard pool's job (publish one from here), or sleep at most 15 minutes"
            )

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report how far the job is (0 to 1) and what it does, for `jobstack show`, the console and
        `jobstack.get_job`: stored at most once a second (one small UPDATE), the first and the last (1.0)
        report always."""
        if self._journaled:
            self._steps().progress(fraction, message)
        elif not 0 <= fraction <= 1:
            raise ValueError(f"progress takes a fraction from 0 to 1, got {fraction}")

    def _steps(self) -> StepRunner:
        """This run's steps, made at the first step or report: a job that uses neither never pays for them."""
        if not self._runner:
            self._runner.append(
                StepRunner(
                    self.db,
                    self.job_id,
                    self.attempt,
                    remaining_ms=self._remaining_ms,
                    start_margin=self._start_margin,
                    max_duration=self._max_duration,
                    transactional_handler=self._conn is not None,
                )
            )
        return self._runner[0]

    def snooze(self, seconds: float) -> Snooze:
        """`return ctx.snooze(60)` (or raise it): run again in `seconds`, this attempt not counted."""
        return Snooze(seconds)

    def previous_result(self) -> object:
        """The result of the one job this one waited for (a chain's previous step); None for a job that waited
        for none (a chain's first step, or the same handler published on its own), so one handler serves every
        step. ValueError if it waited for several: a group's callback reads `dependencies()`."""
        found = self.dependencies()
        if not found:
            return None
        if len(found) != 1:
            raise ValueError(f"job {self.job_id} waited for {len(found)} jobs, not one: read ctx.dependencies()")
        return found[0].result

    def time_left(self) -> timedelta:
        """Time before the Lambda deadline: check it before starting a long step."""
        return timedelta(milliseconds=self._remaining_ms())

    @property
    def is_last_attempt(self) -> bool:
        return spent(self.attempt, self.max_attempts)

    def cancel_requested(self) -> bool:
        """Whether an operator ran `jobstack cancel` on this job while it runs: poll it between steps of a long
        job and stop (return, or raise) if so. A job that stops by raising is cancelled, not retried; one
        that returns is completed. One small query per call: not in a tight loop."""
        return cancel_requested(self.db, self.job_id)


#: A handler returns None, or a result (JSON, at most db.lifecycle.RESULT_MAX_BYTES) stored with the job.
JobHandler = Callable[[JobContext], object]


@dataclass(frozen=True)
class RegisteredHandler:
    type: str
    run: JobHandler
    #: Do not start this job with less time than this before the deadline (None: the worker's default).
    min_time_left: timedelta | None = None
    #: Runs inside the transaction that completes the job (`ctx.conn`): its database writes and the
    #: completion commit together or not at all.
    transactional: bool = False
    #: At most this many jobs of the type with the same `concurrency_key` run at once (None: no limit).
    concurrency_per_key: int | None = None
    #: The named limiter (settings `rate_limits`) its starts take a token from (None: not limited).
    rate_limit: str | None = None
    #: Per tenant (the job's `tenant`): at most this many of a tenant's jobs run at once, among the types of its
    #: `tenant_group` (None: no limit); each tenant's starts take tokens of its own bucket of the named limiter
    #: `tenant_rate_limit` (settings `rate_limits`). db/claiming/tenant_gate.py.
    tenant_concurrency: int | None = None
    tenant_rate_limit: str | None = None
    #: The types that share a tenant's slots and bucket: those naming the same group (None: the type alone).
    tenant_group: str | None = None
    #: How long a job with steps may run in all, across the invocations it is sliced into (None: a day).
    max_duration: timedelta | None = None
    #: An `async def` handler: awaited on the invocation's event loop, beside the batch's other async jobs in a
    #: standard pool (worker/processing.py: runs_together).
    is_async: bool = False


_handlers: dict[str, RegisteredHandler] = {}


def job(
    name: str,
    *,
    min_time_left_seconds: int | None = None,
    transactional: bool = False,
    concurrency_per_key: int | None = None,
    rate_limit: str | None = None,
    max_duration_seconds: int | None = None,
    tenant_concurrency: int | None = None,
    tenant_rate_limit: str | None = None,
    tenant_group: str | None = None,
) -> Callable[[JobHandler], JobHandler]:
    """Register the decorated function as the handler of job type `name` (declared in db/job_types.py).

    `transactional=True`: the handler gets `ctx.conn`, open in the transaction that completes the job, so
    its database writes happen exactly once: they commit with the completion or roll back with it.
    `concurrency_per_key=N`: at most N jobs of this type with the same `concurrency_key` (given at publish)
    run at once, across every worker; other keys are not held back (db/claiming/concurrency_gate.py).
    `rate_limit=NAME`: each start takes a token of the limiter NAME of the settings' `rate_limits`
    (db/rate_limits.py), shared by every worker and every type naming it.
    `tenant_concurrency=N`: at most N jobs of one tenant (`tenant=` at publish) run at once, across every
    worker; `tenant_rate_limit=NAME`: each tenant's starts take tokens of a bucket of its own at the rate of
    the settings' limiter NAME. Both count among the types naming the same `tenant_group` (a pool's types
    name one group for a limit per pool), else the type alone (db/claiming/tenant_gate.py).
    `max_duration_seconds=S`: a job with steps (`ctx.step`) sliced across invocations fails once S seconds
    have passed since its first step (default: a day)."""
    if max_duration_seconds is not None and max_duration_seconds < 1:
        raise ConfigError(f"@job({name!r}): max_duration_seconds must be at least 1, got {max_duration_seconds}")
    if concurrency_per_key is not None and concurrency_per_key < 1:
        raise ConfigError(f"@job({name!r}): concurrency_per_key must be at least 1, got {concurrency_per_key}")
    if tenant_concurrency is not None and tenant_concurrency < 1:
        raise ConfigError(f"@job({name!r}): tenant_concurrency must be at least 1, got {tenant_concurrency}")
    if tenant_group is not None and tenant_concurrency is None and tenant_rate_limit is None:
        raise ConfigError(f"@job({name!r}): tenant_group names who shares a tenant limit: give tenant_concurrency "
                          "or tenant_rate_limit too")  # fmt: skip
    if tenant_group is not None and not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", tenant_group):
        raise ConfigError(f"@job({name!r}): tenant_group must be 1-64 letters, digits or _.:-, got {tenant_group!r}")
    get_job_type(name)  # the payload schema must exist first: it is the contract with publishers

    def register(func: JobHandler) -> JobHandler:
        if name in _handlers:
            raise HandlerAlreadyRegistered(name)
        is_async = inspect.iscoroutinefunction(func)
        if is_async and transactional:
            raise ConfigError(
                f"@job({name!r}): an async def handler cannot be transactional (ctx.conn is a sync connection, "
                "and would hold the event loop): make it a sync def, or drop transactional=True"
            )
        min_left = timedelta(seconds=min_time_left_seconds) if min_time_left_seconds is not None else None
        _handlers[name] = RegisteredHandler(
            type=name,
            run=func,
            min_time_left=min_left,
            transactional=transactional,
            concurrency_per_key=concurrency_per_key,
            rate_limit=rate_limit,
            tenant_concurrency=tenant_concurrency,
            tenant_rate_limit=tenant_rate_limit,
            tenant_group=tenant_group,
            max_duration=timedelta(seconds=max_duration_seconds) if max_duration_seconds is not None else None,
            is_async=is_async,
        )
        return func

    return register


def registered_handlers() -> Mapping[str, RegisteredHandler]:
    """Every registered handler by type, read-only (the worker composes its table from it)."""
    return MappingProxyType(_handlers)


def get_handler(name: str) -> RegisteredHandler:
    handler = _handlers.get(name)
    if handler is None:
        raise HandlerNotFound(name, list(_handlers))
    return handler


def check_fits(function_timeout: timedelta) -> None:
    """Refuse a handler that could never start: one whose `min_time_left_seconds` is at or above the
    function timeout would be deferred on every delivery, forever."""
    for handler in _handlers.values():
        if handler.min_time_left is not None and handler.min_time_left >= function_timeout:
            raise ConfigError(
                f"handler for {handler.type!r} asks for min_time_left_seconds="
                f"{int(handler.min_time_left.total_seconds())}, but the function timeout is "
                f"{int(function_timeout.total_seconds())} s: it could never start; lower it or raise timeout_seconds"
            )


def named_rate_limits() -> set[str]:
    """The limiters the registered handlers name (for every start, or per tenant)."""
    return {n for h in _handlers.values() for n in (h.rate_limit, h.tenant_rate_limit) if n is not None}


def check_rate_limits(configured: Iterable[str]) -> None:
    """Refuse a handler naming a limiter the settings do not define: its jobs could never start. And a tenant
    group whose types disagree on its limits: one group is one count and one bucket per tenant."""
    known = set(configured)
    for handler in _handlers.values():
        for name, what in ((handler.rate_limit, "rate limit"), (handler.tenant_rate_limit, "tenant_rate_limit")):
            if name is not None and name not in known:
                raise ConfigError(
                    f"handler for {handler.type!r} takes its tokens from {what} {name!r}, which the "
                    f"settings' rate_limits do not define (defined: {', '.join(sorted(known)) or 'none'})"
                )
    groups: dict[str, RegisteredHandler] = {}
    for handler in _handlers.values():
        if handler.tenant_group is None:
            continue
        first = groups.setdefault(handler.tenant_group, handler)
        limits = (handler.tenant_concurrency, handler.tenant_rate_limit)
        if (first.tenant_concurrency, first.tenant_rate_limit) != limits:
            raise ConfigError(
                f"tenant_group {handler.tenant_group!r}: {first.type!r} and {handler.type!r} give it different limits "
                "(tenant_concurrency, tenant_rate_limit): give every type of the group the same ones"
            )


def tenant_group_types(handler: RegisteredHandler) -> tuple[str, ...]:
    """The types whose running jobs count toward `handler`'s tenant limit: its group's, or itself."""
    if handler.tenant_group is None:
        return (handler.type,)
    return tuple(sorted(h.type for h in _handlers.values() if h.tenant_group == handler.tenant_group))


def unregister(name: str) -> None:
    """For tests that register temporary handlers."""
    _handlers.pop(name, None)
