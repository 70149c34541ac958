"""The worker's contract with the stack that deploys it, written once: the environment variables the worker
reads, the metrics it emits and the log levels Lambda names; and with the operators' CLI: the attributes and
kinds of the dead letters it writes. The stack (stacks/) writes what this names and its alarms watch what
this names; the worker (worker/config.py, worker/metrics.py, worker/transport.py) reads and emits it, and
`jobstack dlq` (cli/dlq.py) reads its dead letters by these names.

This module imports nothing but the standard library, so stacks/ may import it without loading the worker
(the one module of worker/ it imports), and the CLI too (`jobstack --help` loads no SQLAlchemy).
tests/infra/test_contract.py feeds every synthesized function's environment to the worker's loader, and
every alarm on the worker's metrics is checked against what a real batch prints.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Env:
    """Environment variable names. The stack sets the first group on every function; the others are for
    local runs and tuning (worker/config.py gives each a default)."""

    QUEUE_URL: Final = "QUEUE_URL"
    DLQ_URL: Final = "DLQ_URL"
    DATABASE_SECRET_ARN: Final = "DATABASE_SECRET_ARN"  # noqa: S105 - a variable's name, not a secret
    LOG_LEVEL: Final = "LOG_LEVEL"
    STALE_AFTER_SECONDS: Final = "JOB_STALE_AFTER_SECONDS"
    FUNCTION_TIMEOUT_SECONDS: Final = "JOB_FUNCTION_TIMEOUT_SECONDS"
    MAX_RECEIVE_COUNT: Final = "JOB_MAX_RECEIVE_COUNT"
    SWEEP_LOST_AFTER_SECONDS: Final = "SWEEP_LOST_AFTER_SECONDS"
    SWEEP_EXPIRED_AFTER_SECONDS: Final = "SWEEP_EXPIRED_AFTER_SECONDS"
    PRUNE_COMPLETED_AFTER_DAYS: Final = "PRUNE_COMPLETED_AFTER_DAYS"
    PRUNE_FAILED_AFTER_DAYS: Final = "PRUNE_FAILED_AFTER_DAYS"
    SERVICE: Final = "JOBSTACK_SERVICE"
    DATABASE_SSLMODE: Final = "DATABASE_SSLMODE"
    DATABASE_SSLROOTCERT: Final = "DATABASE_SSLROOTCERT"
    #: Only with several pools (the sweeper and the schedules' publisher): db/routes.py reads the first too.
    ROUTES: Final = "JOBSTACK_ROUTES"
    SWEEP_WINDOWS: Final = "JOBSTACK_SWEEP_WINDOWS"
    #: Only with schedules: the queue of fires that could not publish (the sweeper replays it).
    SCHEDULE_FAILURES_URL: Final = "SCHEDULE_FAILURES_URL"
    #: Only for a pool with `completion: batched` (COMPLETION_MODES); absent means per_job.
    COMPLETION: Final = "JOB_COMPLETION"
    #: Only with `rate_limits` in the settings: the named limiters, as `rate_limits_json` writes them.
    RATE_LIMITS: Final = "JOB_RATE_LIMITS"
    #: The setting `tracing` (TRACING_MODES); absent means "off": no spans even where the OpenTelemetry API is
    #: importable. "xray" and "otel" make spans through the API where an SDK is configured.
    TRACING: Final = "JOBSTACK_TRACING"
    #: Only with a `django` project in the settings: Django's own variable, the settings module the worker sets
    #: Django up with at its first `django.task` job (worker/jobs/django_tasks.py).
    DJANGO_SETTINGS_MODULE: Final = "DJANGO_SETTINGS_MODULE"

    # Local runs and tuning.
    DATABASE_URL: Final = "DATABASE_URL"
    SECRET_MAX_AGE_SECONDS: Final = "JOB_SECRET_MAX_AGE_SECONDS"  # noqa: S105 - a variable's name
    MIN_TIME_LEFT_SECONDS: Final = "JOB_MIN_TIME_LEFT_SECONDS"
    #: How often a running batch says it is alive (worker/completion.py's heartbeat; 0: never).
    HEARTBEAT_SECONDS: Final = "JOB_HEARTBEAT_SECONDS"
    BACKOFF_BASE_SECONDS: Final = "JOB_BACKOFF_BASE_SECONDS"
    BACKOFF_MAX_SECONDS: Final = "JOB_BACKOFF_MAX_SECONDS"
    MAX_DELIVERIES: Final = "JOB_MAX_DELIVERIES"
    SWEEP_PENDING_AFTER_SECONDS: Final = "SWEEP_PENDING_AFTER_SECONDS"
    SWEEP_BATCH_LIMIT: Final = "SWEEP_BATCH_LIMIT"
    EMF: Final = "JOBSTACK_EMF"  # "1": print EMF outside Lambda too


#: How a pool's worker settles its successes (the setting `completion`, Env.COMPLETION): "per_job", each
#: durable before the next handler starts; "batched", a batch's claims and its successes in one statement each.
COMPLETION_MODES: Final = ("per_job", "batched")
PER_JOB: Final = "per_job"
BATCHED: Final = "batched"

#: CloudWatch namespace and dimensions of the worker's EMF metrics. Every metric is emitted by job type and
#: by service alone: alarms cannot SEARCH, so they watch the second set.
METRICS_NAMESPACE: Final = "Jobstack"
SERVICE_DIMENSION: Final = "Service"
JOB_TYPE_DIMENSION: Final = "JobType"
DIMENSIONS: Final = [[SERVICE_DIMENSION, JOB_TYPE_DIMENSION], [SERVICE_DIMENSION]]
#: Each outcome's count, by the outcome's name in worker/metrics.py.
METRIC_NAMES: Final = {
    "succeeded": "JobsSucceeded",
    "failed": "JobsFailed",
    "retried": "JobsRetried",
    "dead_lettered": "JobsDeadLettered",
    "cancelled": "JobsCancelled",  # acknowledged unrun, or stopped when asked: an operator's jobstack cancel
    "unavailable": "JobsUnavailable",  # the database (or its secret) could not be reached
    "errored": "JobsErrored",  # the worker itself failed on the record
    "snoozed": "JobsSnoozed",  # the handler asked to run again later (Snooze): no attempt used
    "throttled": "JobsThrottled",  # not run: its concurrency key's slots were taken (no attempt used)
    "waiting": "JobsWaiting",  # the handler waits for a signal or a time (db/waits.py): no attempt used
}
DURATION_METRIC: Final = "JobDuration"
#: Milliseconds from publish (or run_at, if later) to the first attempt's claim: what says whether a pool needs
#: more concurrency. The stack's optional p99 alarm per pool watches it by service (stacks/monitoring.py).
QUEUE_WAIT_METRIC: Final = "JobQueueWait"

#: The setting `tracing` (Env.TRACING): X-Ray active tracing on the functions, the ADOT layer for
#: OpenTelemetry, or neither. The worker's spans go through the OpenTelemetry API in "xray" and "otel".
TRACING_MODES: Final = ("off", "xray", "otel")

#: Settings' log_level (Python's names) as Lambda's ApplicationLogLevel names them: the stack sets the
#: function's level from it, and the worker prints its metrics at it (worker/metrics.py).
LAMBDA_LOG_LEVELS: Final = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARN", "ERROR": "ERROR"}

#: The attributes the worker adds to a message it copies to the DLQ, read back by `jobstack dlq` (cli/dlq.py).
#: Every one starts with DEAD_LETTER_PREFIX, so a redrive can strip them all.
DEAD_LETTER_PREFIX: Final = "jobstack."
DEAD_LETTER_REASON: Final = "jobstack.error"
DEAD_LETTER_KIND: Final = "jobstack.error-kind"
DEAD_LETTER_SOURCE_MESSAGE: Final = "jobstack.source-message-id"
DEAD_LETTER_RECEIVE_COUNT: Final = "jobstack.receive-count"
DEAD_LETTER_FAILED_AT: Final = "jobstack.failed-at"
#: On a fresh copy of a message near SQS's receive limit: the deliveries of the job's earlier copies.
DELIVERIES_ATTRIBUTE: Final = "jobstack.deliveries"


class DeadLetterKind(StrEnum):
    """Why the worker dead-lettered a message: its `jobstack.error-kind` attribute, which `jobstack dlq` groups
    by and which decides what a redrive may send back."""

    MALFORMED = "malformed"  # the body is not a job message
    UNKNOWN_TYPE = "unknown_type"  # no handler for its type in this deployment
    TYPE_MISMATCH = "type_mismatch"  # the message names another type than its row
    NOT_FOUND = "not_found"  # no row after every delivery: sent without publish()?
    INVALID_PAYLOAD = "invalid_payload"  # the row's payload fails its type's schema
    FAILED = "failed"  # the handler raised on the job's last attempt
    EXHAUSTED = "exhausted"  # no attempts left when it was received (a worker died on the last one)
    UNDELIVERABLE = "undeliverable"  # every delivery for too long could not run it (busy, deferred, ...)


@dataclass(frozen=True)
class RateLimit:
    """A named limiter (settings `rate_limits`, `@job(..., rate_limit=NAME)`): a token bucket shared by every
    worker through the database, refilled at `per_second`, holding at most `burst` tokens."""

    per_second: float
    burst: int


def parse_rate_limits(value: object, where: str = "rate_limits") -> dict[str, RateLimit]:
    """The settings' (or the environment's) limiters, or ValueError naming the one that is wrong and why."""
    if not isinstance(value, dict):
        raise ValueError(f'{where} must map names to {{"per_second": N, "burst": N}}, got {value!r}')
    limits = {}
    for name, spec in value.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", name):
            raise ValueError(f"{where}: limiter name {name!r} must be 1-64 letters, digits or _.:-")
        if not isinstance(spec, dict) or set(spec) - {"per_second", "burst"} or "per_second" not in spec:
            raise ValueError(f'{where}.{name} must be {{"per_second": N, "burst": N}} (burst optional), got {spec!r}')
        rate, burst = spec["per_second"], spec.get("burst", 1)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 100_000:
            raise ValueError(f"{where}.{name}.per_second must be a number above 0 (at most 100000), got {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= 1_000_000:
            raise ValueError(f"{where}.{name}.burst must be a whole number of at least 1, got {burst!r}")
        limits[name] = RateLimit(float(rate), burst)
    return limits


def rate_limits_json(limits: dict[str, RateLimit]) -> str:
    """The environment's form of the limiters (what `parse_rate_limits(json.loads(...))` reads back)."""
    return json.dumps(
        {name: {"per_second": limit.per_second, "burst": limit.burst} for name, limit in sorted(limits.items())},
        separators=(",", ":"),
    )
