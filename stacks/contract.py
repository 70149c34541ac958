"""The worker's environment, written once: every function the stack deploys and `jobstack local` get theirs here.

worker/config.py reads these variables (by worker/contract.py's names) and refuses what it cannot use, so
the values are derived in one place from the pool's settings: the worker pool's function, the sweeper and
the schedules' function (which add the route map, the sweep windows and the failed fires' queue), and the
local runner (which names a database URL instead of a secret, and may shorten the timeout). No aws_cdk here:
the CLI imports it, and values may be CloudFormation tokens when the stack calls it.
tests/infra/test_contract.py feeds every synthesized function's environment to the worker's loader.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacks.settings_model import Pool, stale_after_for
from worker.contract import PER_JOB, Env, rate_limits_json

#: The OpenTelemetry SDK's own variable (the ADOT layer's SDK reads it), for `otel_exporter_endpoint`.
OTEL_EXPORTER_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


@dataclass(frozen=True)
class WorkerQueues:
    """The pool's queue and DLQ URLs (tokens in the stack)."""

    queue_url: str
    dlq_url: str


def worker_environment(
    pool: Pool,
    queues: WorkerQueues,
    *,
    database_secret_arn: str | None = None,
    database_url: str | None = None,
    timeout_seconds: int | None = None,
    stale_after_seconds: int | None = None,
    max_receive_count: int | None = None,
) -> dict[str, str]:
    """What a pool's worker reads. Deployed functions name the database's secret, and how to verify its TLS;
    `jobstack local` names a database URL (which says its own sslmode) and may run with another timeout, from
    which the stale window follows as the stack derives it."""
    if (database_secret_arn is None) == (database_url is None):
        raise ValueError("worker_environment needs exactly one of database_secret_arn and database_url")
    s = pool.settings
    timeout = s.timeout_seconds if timeout_seconds is None else timeout_seconds
    env = {Env.QUEUE_URL: queues.queue_url, Env.DLQ_URL: queues.dlq_url}
    if database_secret_arn is not None:
        env[Env.DATABASE_SECRET_ARN] = database_secret_arn
    elif database_url is not None:
        env[Env.DATABASE_URL] = database_url
    env |= {
        Env.LOG_LEVEL: s.log_level,
        Env.STALE_AFTER_SECONDS: str(stale_after_seconds or stale_after_for(timeout)),
        Env.FUNCTION_TIMEOUT_SECONDS: str(timeout),
        Env.MAX_RECEIVE_COUNT: str(max_receive_count or s.max_receive_count),
        Env.SWEEP_LOST_AFTER_SECONDS: str(s.sweep_lost_after_seconds),
        Env.SWEEP_EXPIRED_AFTER_SECONDS: str(s.sweep_expired_after_seconds),
        Env.PRUNE_COMPLETED_AFTER_DAYS: str(s.completed_retention_days),
        Env.PRUNE_FAILED_AFTER_DAYS: str(s.failed_retention_days),
        Env.SERVICE: pool.service,
    }
    if s.completion != PER_JOB:  # absent means per_job: the templates of pools that keep it are unchanged
        env[Env.COMPLETION] = s.completion
    if s.tracing != "off":  # absent means off: templates without tracing are unchanged
        env[Env.TRACING] = s.tracing
        if s.otel_exporter_endpoint is not None:
            env[OTEL_EXPORTER_ENDPOINT] = s.otel_exporter_endpoint
    if s.django is not None:  # absent: no Django project, and Django is never imported
        env[Env.DJANGO_SETTINGS_MODULE] = s.django.settings_module
    if s.rate_limits:  # absent means none: templates without limiters are unchanged
        env[Env.RATE_LIMITS] = rate_limits_json(dict(s.rate_limits))
    if database_secret_arn is not None:
        env[Env.DATABASE_SSLMODE] = s.database_sslmode
        if s.database_sslrootcert:
            env[Env.DATABASE_SSLROOTCERT] = s.database_sslrootcert
    return env


def publisher_environment(
    worker: dict[str, str],
    *,
    routes: str | None = None,
    sweep_windows: str | None = None,
    schedule_failures_url: str | None = None,
) -> dict[str, str]:
    """The sweeper's and the schedules' function's: the default pool's worker environment, plus the route
    map and sweep windows when there are several pools, plus the queue of fires that could not publish
    when there are schedules."""
    env = dict(worker)
    if routes is not None:
        env[Env.ROUTES] = routes
    if sweep_windows is not None:
        env[Env.SWEEP_WINDOWS] = sweep_windows
    if schedule_failures_url is not None:
        env[Env.SCHEDULE_FAILURES_URL] = schedule_failures_url
    return env
