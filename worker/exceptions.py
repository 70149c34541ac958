"""Errors the worker raises on purpose."""

from __future__ import annotations

from datetime import datetime

from db.exceptions import JobstackError


class HandlerNotFound(JobstackError):
    def __init__(self, job_type: str, known: list[str]) -> None:
        self.job_type = job_type
        super().__init__(
            f"no handler for job type {job_type!r}: add one in worker/jobs/ with @job({job_type!r}) "
            f"(handlers exist for: {', '.join(sorted(known)) or 'none'})"
        )


class HandlerAlreadyRegistered(JobstackError):
    def __init__(self, job_type: str) -> None:
        self.job_type = job_type
        super().__init__(f"job type {job_type!r} has two handlers: keep one @job({job_type!r})")


class BatchFailed(JobstackError):
    """The invocation must fail (the database is unreachable): raised after every record was settled, so
    Lambda counts a function error and the event source mapping backs off."""


#: The longest a job may snooze at once: as far ahead as a job may be scheduled.
MAX_SNOOZE_SECONDS = 366 * 86_400


class Snooze(Exception):
    """Raised (or returned) by a handler: run this job again in `seconds`, without using an attempt ("the
    upstream export is not ready yet", "the API said wait"). Its row waits as pending with that run_at, and
    its message comes back when it is due (worker/processing.py)."""

    def __init__(self, seconds: float) -> None:
        if not 1 <= seconds <= MAX_SNOOZE_SECONDS:
            raise ValueError(f"Snooze takes 1 to {MAX_SNOOZE_SECONDS} seconds, got {seconds}")
        self.seconds = seconds
        super().__init__(f"snoozed for {seconds} s")


class Slice(Snooze):
    """Raised by `ctx.step` when the invocation's time is nearly out: the job continues from that step in a
    later invocation, its attempt given back (a slice is not a failure). Let it propagate: a handler that
    catches it would run the step without the time to finish it."""

    def __init__(self, reason: str) -> None:
        Exception.__init__(self, reason)
        self.seconds = 0  # due again at once: its message is visible again when this invocation returns


class Wait(Exception):
    """Raised by `ctx.wait_for_signal` and `ctx.sleep`: the job waits for the signal `key` (None: for its time)
    until `until`, in the database, with no message in flight and no function running; its attempt is given
    back. Let it propagate: a handler that catches it would go on without what it waited for."""

    def __init__(self, key: str | None, until: datetime) -> None:
        self.key, self.until = key, until
        super().__init__(
            f"waits for signal {key!r} until {until:%Y-%m-%d %H:%M:%S} UTC"
            if key
            else f"sleeps until {until:%Y-%m-%d %H:%M:%S} UTC"
        )


class FifoCannotWait(JobstackError):
    """A FIFO pool's job asked to wait for a signal, or to sleep past SQS's delay: refused, the job fails."""
