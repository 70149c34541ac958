"""Errors the worker raises on purpose."""

from __future__ import annotations

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
