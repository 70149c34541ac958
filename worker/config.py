"""The worker's configuration, read from the environment once per container and validated up front.

A missing or malformed setting fails the first invocation with one line naming the variable, instead of
failing every job later in a less obvious way. Secrets never live here: the deployed worker gets the ARN
of its database secret and reads the URL from Secrets Manager (see worker/secrets.py).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from db import JobTypes, ResendWindows
from db.destinations import Destination, Queue
from db.engine import normalise_url
from db.exceptions import ConfigError
from db.routes import DEFAULT_POOL, ROUTES_VARIABLE, Router, Routes
from worker.contract import COMPLETION_MODES, PER_JOB, TRACING_MODES, Env, RateLimit, parse_rate_limits

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


#: A claim whose heartbeat is this many beats old is stale (its invocation is taken for dead) ...
HEARTBEAT_MISSED = 3
#: ... and each beat keeps the batch's messages invisible this many beats more: a dead invocation's messages
#: come back one beat after its claims went stale, when a redelivery may take them.
HEARTBEAT_HOLD = HEARTBEAT_MISSED + 1


@dataclass(frozen=True)
class WorkerConfig:
    database_url: str | None  # local runs
    database_secret_arn: str | None  # deployed: read once per container
    queue_url: str
    dlq_url: str
    log_level: str = "INFO"
    #: libpq's TLS settings for the database (the stack sets verify-full and the CA file; unset: libpq's own).
    database_sslmode: str | None = None
    database_sslrootcert: str | None = None
    #: A secret read longer ago than this is read again before the next batch (RDS rotates every 7 days).
    secret_max_age: timedelta = timedelta(hours=1)
    #: A `processing` row older than this belongs to a dead invocation. Must exceed the function timeout.
    stale_after: timedelta = timedelta(seconds=960)
    #: Records are not started with less time than this before the Lambda deadline.
    min_time_left: timedelta = timedelta(seconds=10)
    #: How often a running batch keeps its messages invisible and stamps its claimed rows (None: never). A
    #: claim silent for HEARTBEAT_MISSED beats is stale; a dead invocation's messages come back within
    #: HEARTBEAT_HOLD beats (worker/completion.py).
    heartbeat: timedelta | None = timedelta(seconds=10)
    completion: str = PER_JOB  # COMPLETION_MODES: how successes are settled (worker/completion.py)
    #: Retry delay: base x 2^(attempt-1), jittered, capped (SQS allows up to 12 h; we cap lower).
    backoff_base_seconds: int = 10
    backoff_max_seconds: int = 900
    #: The queue's redrive maxReceiveCount (the stack passes it). A returned message that has been received
    #: `requeue_at_receive_count` times is replaced by a fresh copy before SQS's redrive can take it.
    max_receive_count: int = 5
    #: Deliveries (across fresh copies) that never ran the job before the worker dead-letters it.
    max_deliveries: int = 100
    #: The function's timeout (the stack passes it): settings that could never run are refused against it.
    function_timeout: timedelta | None = None
    #: Sweeper windows (see db.relay.ResendWindows); the stack derives the last two from the queue.
    sweep_pending_after: timedelta = timedelta(seconds=300)
    sweep_lost_after: timedelta = timedelta(seconds=6 * 60 + 900 + 60)
    sweep_expired_after: timedelta = timedelta(days=4, seconds=6 * 60 + 900)
    sweep_batch_limit: int = 500
    #: Pruning: completed and exhausted failed rows older than these are deleted (None: kept forever).
    prune_completed_after: timedelta | None = timedelta(days=30)
    prune_failed_after: timedelta | None = timedelta(days=90)
    prune_batch_limit: int = 1000
    #: The `Service` dimension of the worker's metrics: the stack name in a deployment.
    service: str = "jobstack"
    #: A stack with several worker pools (the sweeper's and the scheduled publisher's view): each job type's
    #: queue, and each pool's (stale, lost, expired) windows in seconds. None: one pool, QUEUE_URL.
    routes: Routes | None = None
    pool_windows: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    #: The queue where scheduled fires that could not publish wait (stacks/periodic_jobs.py): the sweeper
    #: replays it. None: the environment has no schedules.
    schedule_failures_url: str | None = None
    #: Named rate limits (settings `rate_limits`, Env.RATE_LIMITS): handlers name one with rate_limit=.
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    #: TRACING_MODES (the setting `tracing`, absent: "off"): "off" makes no spans; otherwise spans through the
    #: OpenTelemetry API where an SDK is configured (worker/tracing.py).
    tracing: str = "off"

    @property
    def silent_after(self) -> timedelta | None:
        """A claim heard of less recently than this is stale (None: no heartbeat, `stale_after` decides)."""
        return None if self.heartbeat is None else self.heartbeat * HEARTBEAT_MISSED

    @property
    def requeue_at_receive_count(self) -> int:
        """Half of maxReceiveCount (rounded up) is ours; the rest is headroom for Lambda's throttled
        receives, which SQS counts but our code never sees."""
        return max(self.max_receive_count - self.max_receive_count // 2, 1)

    def resend_windows(self) -> ResendWindows:
        return ResendWindows(
            unsent_after=self.sweep_pending_after,
            lost_after=self.sweep_lost_after,
            expired_after=self.sweep_expired_after,
            stale_after=self.stale_after,
        )

    def destination(self, sqs: Any) -> Destination:
        """Where the sweeper and the scheduled publisher send: each type's pool queue, or the one queue."""
        return Router(sqs, self.routes) if self.routes else Queue(sqs, self.queue_url)

    def pool_sweeps(self) -> list[tuple[ResendWindows, JobTypes | None]]:
        """Per pool: its windows and its jobs (the default pool: every type no other pool lists; a priority
        lane: the jobs published with its priority, which no other pool's windows judge)."""
        if self.routes is None:
            return [(self.resend_windows(), None)]
        listed, lanes = self.routes.types, self.routes.priorities
        pool_lanes = {pool: priority for priority, pool in lanes.items()}
        sweeps: list[tuple[ResendWindows, JobTypes | None]] = []
        for pool, (stale, lost, expired) in self.pool_windows.items():
            types = (
                JobTypes(lane=pool_lanes[pool])
                if pool in pool_lanes
                else JobTypes(
                    excluding=frozenset(t for t, p in listed.items() if p != DEFAULT_POOL), lanes=frozenset(lanes)
                )
                if pool == DEFAULT_POOL
                else JobTypes(only=frozenset(t for t, p in listed.items() if p == pool), lanes=frozenset(lanes))
            )
            windows = ResendWindows(
                unsent_after=self.sweep_pending_after,
                lost_after=timedelta(seconds=lost),
                expired_after=timedelta(seconds=expired),
                stale_after=timedelta(seconds=stale),
            )
            sweeps.append((windows, types))
        return sweeps


def load_config(environ: Mapping[str, str]) -> WorkerConfig:
    """Build the config from environment variables, or raise ConfigError naming the variable to fix."""
    url = environ.get(Env.DATABASE_URL, "").strip() or None
    arn = environ.get(Env.DATABASE_SECRET_ARN, "").strip() or None
    if url and arn:
        raise ConfigError("both DATABASE_URL and DATABASE_SECRET_ARN are set: set only one")
    if not url and not arn:
        raise ConfigError("no database configured: set DATABASE_SECRET_ARN (deployed) or DATABASE_URL (local)")
    if url:
        normalise_url(url)  # raises a redacted ConfigError for a malformed URL
    if arn and not arn.startswith("arn:"):
        raise ConfigError(
            f"DATABASE_SECRET_ARN must be a Secrets Manager ARN (arn:aws:secretsmanager:...), got {arn!r}"
        )

    sslmode = environ.get(Env.DATABASE_SSLMODE, "").strip() or None
    if sslmode is not None and sslmode not in SSL_MODES:
        raise ConfigError(f"DATABASE_SSLMODE must be one of {', '.join(SSL_MODES)}, got {sslmode!r}")
    rootcert = environ.get(Env.DATABASE_SSLROOTCERT, "").strip() or None
    if sslmode in ("verify-ca", "verify-full") and rootcert is not None and not os.path.isfile(rootcert):
        raise ConfigError(
            f"DATABASE_SSLROOTCERT {rootcert} does not exist: point it at the CA bundle your database's "
            "certificate is signed by (settings: database_ca_file)"
        )

    level = environ.get(Env.LOG_LEVEL, "INFO").strip().upper() or "INFO"
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")

    completion = environ.get(Env.COMPLETION, PER_JOB).strip() or PER_JOB
    if completion not in COMPLETION_MODES:
        raise ConfigError(f"{Env.COMPLETION} must be one of {', '.join(COMPLETION_MODES)}, got {completion!r}")
    tracing = environ.get(Env.TRACING, "off").strip() or "off"
    if tracing not in TRACING_MODES:
        raise ConfigError(f"{Env.TRACING} must be one of {', '.join(TRACING_MODES)}, got {tracing!r}")

    stale = _whole(environ, Env.STALE_AFTER_SECONDS, 960)
    min_left = _whole(environ, Env.MIN_TIME_LEFT_SECONDS, 10)
    heartbeat = _whole(environ, Env.HEARTBEAT_SECONDS, 10)
    if heartbeat * HEARTBEAT_HOLD >= stale:  # could not tell a live claim from a dead one sooner than `stale`
        if environ.get(Env.HEARTBEAT_SECONDS, "").strip() and heartbeat:
            raise ConfigError(
                f"JOB_HEARTBEAT_SECONDS ({heartbeat}) times {HEARTBEAT_HOLD} must stay below JOB_STALE_AFTER_SECONDS "
                f"({stale}): lower it, or set 0 for no heartbeat"
            )
        heartbeat = 0  # the default, with a stale window that short (a local run's): no heartbeat
    base = _whole(environ, Env.BACKOFF_BASE_SECONDS, 10)
    cap = _whole(environ, Env.BACKOFF_MAX_SECONDS, 900)
    if cap < base:
        raise ConfigError(f"JOB_BACKOFF_MAX_SECONDS ({cap}) must be at least JOB_BACKOFF_BASE_SECONDS ({base})")
    if cap > 43_200:
        raise ConfigError(f"JOB_BACKOFF_MAX_SECONDS must be at most 43200 (SQS's 12-hour visibility limit), got {cap}")
    max_receive = _whole(environ, Env.MAX_RECEIVE_COUNT, 5)
    if not 1 <= max_receive <= 1000:
        raise ConfigError(f"JOB_MAX_RECEIVE_COUNT must be SQS's maxReceiveCount (1-1000), got {max_receive}")
    timeout = _whole(environ, Env.FUNCTION_TIMEOUT_SECONDS, 0) or None
    if timeout is not None:
        if min_left >= timeout:
            raise ConfigError(
                f"JOB_MIN_TIME_LEFT_SECONDS ({min_left}) must be below the function timeout ({timeout} s): "
                "no job could ever start"
            )
        if stale <= timeout:
            raise ConfigError(
                f"JOB_STALE_AFTER_SECONDS ({stale}) must exceed the function timeout ({timeout} s), or a live "
                "invocation's job would be taken from it"
            )
    return WorkerConfig(
        database_url=url,
        database_secret_arn=arn,
        queue_url=_queue_url(environ, Env.QUEUE_URL),
        dlq_url=_queue_url(environ, Env.DLQ_URL),
        log_level=level,
        database_sslmode=sslmode,
        database_sslrootcert=rootcert,
        secret_max_age=timedelta(seconds=max(_whole(environ, Env.SECRET_MAX_AGE_SECONDS, 3600), 60)),
        stale_after=timedelta(seconds=stale),
        min_time_left=timedelta(seconds=min_left),
        heartbeat=timedelta(seconds=heartbeat) if heartbeat else None,
        completion=completion,
        tracing=tracing,
        backoff_base_seconds=base,
        backoff_max_seconds=cap,
        max_receive_count=max_receive,
        max_deliveries=max(_whole(environ, Env.MAX_DELIVERIES, 100), 1),
        function_timeout=timedelta(seconds=timeout) if timeout else None,
        sweep_pending_after=timedelta(seconds=_whole(environ, Env.SWEEP_PENDING_AFTER_SECONDS, 300)),
        sweep_lost_after=timedelta(seconds=_whole(environ, Env.SWEEP_LOST_AFTER_SECONDS, 6 * 60 + 900 + 60)),
        sweep_expired_after=timedelta(
            seconds=_whole(environ, Env.SWEEP_EXPIRED_AFTER_SECONDS, 4 * 86400 + 6 * 60 + 900)
        ),
        sweep_batch_limit=_whole(environ, Env.SWEEP_BATCH_LIMIT, 500),
        prune_completed_after=_days(environ, Env.PRUNE_COMPLETED_AFTER_DAYS, 30),
        prune_failed_after=_days(environ, Env.PRUNE_FAILED_AFTER_DAYS, 90),
        service=environ.get(Env.SERVICE, "jobstack").strip() or "jobstack",
        schedule_failures_url=_queue_url(environ, Env.SCHEDULE_FAILURES_URL)
        if environ.get(Env.SCHEDULE_FAILURES_URL, "").strip()
        else None,
        rate_limits=_rate_limits(environ),
        **_pools(environ),
    )


def _rate_limits(environ: Mapping[str, str]) -> dict[str, RateLimit]:
    text = environ.get(Env.RATE_LIMITS, "").strip()
    if not text:
        return {}
    try:
        return parse_rate_limits(json.loads(text), Env.RATE_LIMITS)
    except ValueError as err:  # json's own errors are ValueErrors too
        raise ConfigError(str(err).splitlines()[0]) from None


def _pools(environ: Mapping[str, str]) -> dict[str, Any]:
    """JOBSTACK_ROUTES and JOBSTACK_SWEEP_WINDOWS, which the stack sets together when it has several pools."""
    text = environ.get(ROUTES_VARIABLE, "").strip()
    if not text:
        return {}
    routes = Routes.from_json(text)
    try:
        raw = json.loads(environ.get(Env.SWEEP_WINDOWS, "") or "{}")
        windows = {str(pool): (int(w[0]), int(w[1]), int(w[2])) for pool, w in raw.items()}
    except (ValueError, TypeError, IndexError, AttributeError):
        raise ConfigError("JOBSTACK_SWEEP_WINDOWS must map each pool to [stale, lost, expired] seconds") from None
    missing = sorted(set(routes.queues) - set(windows))
    if missing:
        raise ConfigError(f"JOBSTACK_SWEEP_WINDOWS has no windows for pool {missing[0]!r} of {ROUTES_VARIABLE}")
    return {"routes": routes, "pool_windows": {pool: windows[pool] for pool in routes.queues}}


def _queue_url(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set: the stack sets it; for local runs export the queue's URL")
    if not value.startswith(("https://", "http://")):
        raise ConfigError(
            f"{name} must be an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>), got {value!r}"
        )
    return value


def _whole(environ: Mapping[str, str], name: str, default: int) -> int:
    """A non-negative whole number: seconds, days or a count, as the variable's name says."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value


def _days(environ: Mapping[str, str], name: str, default: int) -> timedelta | None:
    """Whole days; 0 means "never"."""
    days = _whole(environ, name, default)
    return timedelta(days=days) if days else None


def log_level_number(config: WorkerConfig) -> int:
    return logging.getLevelNamesMapping()[config.log_level]
