"""Every error the `db` package raises on purpose.

Each message is one line that says what was wrong and how to fix it, because these reach operators
through the CLI and the worker's logs; none of them ever contains a database password.
"""

from __future__ import annotations

from uuid import UUID


class JobstackError(Exception):
    """Base class: catch this to handle any deliberate jobstack error."""


class ConfigError(JobstackError):
    """A setting (database URL, queue URL, environment variable) is missing or malformed."""


class UnknownJobType(JobstackError):
    def __init__(self, job_type: str, known: list[str]) -> None:
        self.job_type = job_type
        super().__init__(
            f"unknown job type {job_type!r}: declare it with register_job_type() in db/job_types.py of your "
            "jobstack checkout, which the web app's package (imported as jobstack) and the worker both carry "
            f"(known types: {', '.join(sorted(known)) or 'none'})"
        )


class JobAlreadyRegistered(JobstackError):
    def __init__(self, job_type: str) -> None:
        self.job_type = job_type
        super().__init__(
            f"job type {job_type!r} is registered twice: each type needs one unique name "
            "(rename one, or unregister the first in tests)"
        )


class UnroutableJob(JobstackError):
    """A Router has no queue for the pool a job type runs in: the routes are older than the stack."""

    def __init__(self, job_type: str, pool: str, stack: str, pools: list[str]) -> None:
        self.job_type, self.pool = job_type, pool
        where = f"{stack}'s routes" if stack else "the routes"
        super().__init__(
            f"job type {job_type!r} runs in pool {pool!r}, which {where} give no queue (pools: "
            f"{', '.join(pools)}): refresh JOBSTACK_ROUTES from `jobstack routes --env ENV` after deploying"
        )


class UnknownPriority(JobstackError):
    """A job published with a priority its routes have no lane for, or whose type must keep FIFO order."""

    def __init__(self, job_type: str, priority: str, reason: str) -> None:
        self.job_type, self.priority = job_type, priority
        super().__init__(f"job type {job_type!r} cannot be published with priority {priority!r}: {reason}")


class InvalidPayload(JobstackError):
    def __init__(self, job_type: str, detail: str) -> None:
        self.job_type = job_type
        self.detail = detail
        super().__init__(f"invalid payload for job type {job_type!r}: {detail}")


class PayloadTooLarge(JobstackError):
    def __init__(self, job_type: str, size: int, limit: int, reserve: int = 0) -> None:
        self.size = size
        self.limit = limit  # the queue's maximum message size
        super().__init__(
            f"message for job type {job_type!r} is {size} bytes, over the {limit - reserve} bytes a job may use "
            f"(the queue's limit of {limit} bytes less {reserve} kept for a dead-letter reason): "
            "store large data in S3 and put its key in the payload"
        )


class TenantQuotaExceeded(JobstackError):
    """A publish would give a tenant more jobs of a type waiting to start than the type's
    `max_pending_per_tenant` (db/tenant_quota.py). Nothing of the call was written."""

    def __init__(self, job_type: str, tenant: str, limit: int, pending: int, adding: int) -> None:
        self.job_type, self.tenant, self.limit, self.pending = job_type, tenant, limit, pending
        super().__init__(
            f"tenant {tenant!r} has {pending} jobs of type {job_type!r} waiting to start and this call adds {adding}, "
            f"over its max_pending_per_tenant of {limit}: nothing was written; publish again once some have started, "
            "or raise the limit where the type is registered"
        )


class PublishError(JobstackError):
    """The job row is committed (status `pending`) but SQS did not accept the message.

    Nothing is lost: the sweeper re-sends pending jobs, and `job_id` lets the caller retry or report.
    """

    def __init__(self, job_id: UUID, cause: str) -> None:
        self.job_id = job_id
        self.cause = cause
        super().__init__(
            f"job {job_id} is saved as pending but SQS did not accept its message ({cause}); "
            f"the sweeper will send it, or retry with `jobstack retry {job_id}`"
        )


class PublishBatchError(JobstackError):
    """Some messages of a `publish_many` call were not accepted by SQS; their rows stay `pending`."""

    def __init__(self, failures: dict[UUID, str], published: list[UUID]) -> None:
        self.failures = failures
        self.published = published
        first_id, first_cause = next(iter(failures.items()))
        super().__init__(
            f"{len(failures)} of {len(failures) + len(published)} jobs are saved as pending but SQS did not "
            f"accept their messages (first: {first_id}: {first_cause}); the sweeper will send them"
        )


class IdempotencyConflict(JobstackError):
    """An idempotency key already names a job with another payload: one key must mean one job."""

    def __init__(self, job_type: str, key: str, job_id: UUID) -> None:
        self.job_type, self.key, self.job_id = job_type, key, job_id
        super().__init__(
            f"idempotency key {key!r} already names job {job_id} ({job_type}) with a different payload: "
            "use a new key for a different job, or the same payload to get that job back"
        )


class DatabaseUnavailable(JobstackError):
    """The database did not answer; the message is the driver's reason with any password removed.

    `kind` tells the cases apart whose fix differs: "auth" (credentials refused: re-read a rotated secret),
    "tls" (the certificate check failed) or "unreachable"."""

    def __init__(self, message: str, *, kind: str = "unreachable") -> None:
        self.kind = kind
        super().__init__(message)


class ConnectionBusy(JobstackError):
    """Every connection of this process's pool is checked out and none came back in time.

    Not an outage: in a worker (one connection per container, one invocation at a time) it means code
    asked for a second connection while holding the first, typically a handler using `ctx.db` inside its
    own open transaction, which would otherwise wait forever.
    """


class InvalidBatchItem(JobstackError):
    """One item of a `publish_many` call is invalid; nothing was written."""

    def __init__(self, index: int | str, reason: str) -> None:
        self.index, self.reason = index, reason
        where = f"item {index}" if isinstance(index, int) else str(index)  # a group's callback: "then"
        super().__init__(f"{where}: {reason} (nothing was published)")


class SchemaNotMigrated(DatabaseUnavailable):
    """The database lacks jobstack's table or a column of it: `jobstack migrate` was not run against it (or this
    code is newer than its migrations). A DatabaseUnavailable, so the worker returns its records and fails
    the batch (an alarm) instead of spending attempts."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="schema")
