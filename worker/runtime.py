"""What one Lambda container keeps between invocations: config, database handle, SQS client.

Built on the first invocation (not at import), each part only when first needed: a batch of successes
never creates an SQS client, so boto3 is only imported on failure paths and for the secret.

The database URL read from Secrets Manager is not kept forever: a container can live for hours, and a
rotated password (RDS-managed secrets rotate every 7 days) would fail every call until it died. The secret
is read again when it is older than `secret_max_age`, and at once (at most every 30 s, logged) when the
database refuses the credentials; a changed URL replaces the database handle.

`current()` and `reset()` are the container's one runtime, made and forgotten here only: the three entry
points (worker, sweeper, scheduled) and the SnapStart restore hook use them, and no module keeps a copy.
It is kept per thread: Lambda runs one invocation at a time on one thread, so this is exactly "one per
container" there, while the local runner's concurrent invocation threads each get their own, as that many
Lambda containers would.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from db import DB, ClaimPlan, JobstackError, JobType, create_db, plan_for
from db.job_types import registered_job_types
from db.rate_limits import Limiter
from worker.config import WorkerConfig, load_config, log_level_number
from worker.contract import BATCHED
from worker.exceptions import HandlerNotFound
from worker.observability import LOGGER_NAME, configure_logging
from worker.registry import (
    RegisteredHandler,
    check_fits,
    check_rate_limits,
    registered_handlers,
    tenant_group_types,
)
from worker.secrets import database_url_from_secret

if TYPE_CHECKING:
    from db.claiming.tenant_gate import TenantLimit

POOL_TIMEOUT_SECONDS = 3
#: However often credentials are refused, the secret is read at most this often.
MIN_SECONDS_BETWEEN_SECRET_READS = 30.0
log = logging.getLogger(LOGGER_NAME)


@dataclass(frozen=True)
class Runnable:
    """A job type as this worker runs it: composed once per type (`Runtime.runnables`)."""

    job_type: JobType  # its payload schema and attempts (db/job_types.py)
    handler: RegisteredHandler
    plan: ClaimPlan  # how its deliveries claim (db/claiming/)


class Runtime:
    def __init__(self, config: WorkerConfig, *, db: DB | None = None, sqs: Any | None = None) -> None:
        self.config = config
        self._secret_url: str | None = None
        self._secret_read_at = 0.0
        if db is not None:
            self.__dict__["db"] = db
        if sqs is not None:
            self.__dict__["sqs"] = sqs

    @property
    def config(self) -> WorkerConfig:
        return self._config

    @config.setter
    def config(self, config: WorkerConfig) -> None:
        """A new configuration (tests, the local runner) drops what was composed from the old one."""
        self._config = config
        self._runnables: dict[str, Runnable | JobstackError] = {}
        self._table_of: tuple[dict[str, RegisteredHandler], dict[str, JobType]] | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Runtime:
        return cls(load_config(os.environ if environ is None else environ))

    @cached_property
    def db(self) -> DB:
        url = self.config.database_url
        if url is None:  # the URL a refresh just read, else a first read
            url = self._secret_url or self._read_secret()
        # One invocation at a time per container: a checkout that has to wait is waiting for itself (see
        # db.ConnectionBusy), so it gives up in seconds and the job fails with that reason.
        return create_db(
            url,
            pool_timeout=POOL_TIMEOUT_SECONDS,
            sslmode=self.config.database_sslmode,
            sslrootcert=self.config.database_sslrootcert,
        )

    def _read_secret(self, *, fresh: bool = False) -> str:
        assert self.config.database_secret_arn is not None  # load_config guarantees a URL or a secret
        url = database_url_from_secret(self.config.database_secret_arn, fresh=fresh)
        self._secret_url, self._secret_read_at = url, time.monotonic()
        return url

    def refresh_secret(self, reason: str, *, fresh: bool = True) -> bool:
        """Read the secret again; True if the URL changed (the next `db` access connects with it).

        `fresh` (refused credentials: a rotation the secrets extension's cache may not have seen yet) reads
        Secrets Manager directly; the max-age refresh may take the extension's cached copy."""
        if self.config.database_secret_arn is None or "db" not in self.__dict__:
            return False
        if time.monotonic() - self._secret_read_at < MIN_SECONDS_BETWEEN_SECRET_READS:
            return False
        before = self._secret_url
        after = self._read_secret(fresh=fresh)
        changed = after != before
        log.warning("re-read the database secret", extra={"reason": reason, "url_changed": changed})
        if changed:
            self.__dict__.pop("db").dispose()
            if "heartbeat_db" in self.__dict__:
                self.__dict__.pop("heartbeat_db").dispose()
        return changed

    def expire_old_secret(self) -> None:
        """Before a batch: a secret read longer ago than `secret_max_age` is read again."""
        old = time.monotonic() - self._secret_read_at >= self.config.secret_max_age.total_seconds()
        if old and "db" in self.__dict__ and self.config.database_secret_arn:
            self.refresh_secret("max age", fresh=False)

    @property
    def runnables(self) -> Mapping[str, Runnable | JobstackError]:
        """Every declared job type as this worker runs it (its payload schema, handler and claim plan), or why
        it cannot (HandlerNotFound): composed once, each type's flow control with the claim rule into its
        plan, so a record only looks its type up. Composed again only when a handler or a type was
        registered since (tests, a local reload): comparing the registries is one dict comparison. A
        ConfigError (a limiter the settings lack) is raised: the container's start refuses it first."""
        handlers, types = registered_handlers(), registered_job_types()
        if self._table_of != (handlers, types):
            self._runnables = {name: self._compose(name, handlers, types) for name in types}
            self._table_of = (dict(handlers), dict(types))
        return self._runnables

    def _compose(
        self, name: str, handlers: Mapping[str, RegisteredHandler], types: Mapping[str, JobType]
    ) -> Runnable | JobstackError:
        if name not in handlers:
            return HandlerNotFound(name, list(handlers))
        handler = handlers[name]
        found = Runnable(types[name], handler, self._plan(handler))
        if self.config.completion == BATCHED and found.plan.unbatchable is not None:
            log.info("claimed one by one in this batched pool", extra={"type": name, "reason": found.plan.unbatchable})
        return found

    def _plan(self, handler: RegisteredHandler) -> ClaimPlan:
        limiter = None
        if handler.rate_limit is not None:
            check_rate_limits(self.config.rate_limits)  # one line naming the limiter the settings lack
            limit = self.config.rate_limits[handler.rate_limit]
            limiter = Limiter(handler.rate_limit, limit.per_second, limit.burst)
        return plan_for(
            handler.type,
            stale_after=self.config.stale_after,
            silent_after=self.config.silent_after,
            concurrency_per_key=handler.concurrency_per_key,
            limiter=limiter,
            tenant_limit=self._tenant_limit(handler),
        )

    def _tenant_limit(self, handler: RegisteredHandler) -> TenantLimit | None:
        """The handler's limits per tenant, shared by its group's types (None: it has none)."""
        if handler.tenant_concurrency is None and handler.tenant_rate_limit is None:
            return None
        from db.claiming.tenant_gate import TenantLimit  # a worker without tenant limits never loads it

        check_rate_limits(self.config.rate_limits)  # the limiter exists; the group's types agree
        limiter = None
        if handler.tenant_rate_limit is not None:
            limit = self.config.rate_limits[handler.tenant_rate_limit]
            limiter = Limiter(handler.tenant_rate_limit, limit.per_second, limit.burst)
        return TenantLimit(
            handler.tenant_group or handler.type, tenant_group_types(handler), handler.tenant_concurrency, limiter
        )

    @cached_property
    def heartbeat_db(self) -> DB:
        """A connection of its own for the heartbeat's stamps (worker/completion.py): the handler may hold the
        worker's one connection for as long as it runs."""
        url = self.config.database_url or self._secret_url or self._read_secret()
        return create_db(
            url,
            pool_timeout=POOL_TIMEOUT_SECONDS,
            sslmode=self.config.database_sslmode,
            sslrootcert=self.config.database_sslrootcert,
        )

    @cached_property
    def sqs(self) -> Any:
        import boto3  # lazy: see the module docstring

        return boto3.client("sqs")

    def close(self) -> None:
        for name in ("db", "heartbeat_db"):
            if name in self.__dict__:
                self.__dict__[name].dispose()


_container = threading.local()


def current() -> Runtime:
    """This container's runtime, built on first use (the logging configured, the registered handlers checked
    against the function's timeout): a configuration error surfaces here, as one line, on the first
    invocation."""
    runtime: Runtime | None = getattr(_container, "runtime", None)
    if runtime is None:
        runtime = Runtime.from_environ()
        check_handlers(runtime.config)
        configure_logging(log_level_number(runtime.config))
        _container.runtime = runtime
    return runtime


def check_handlers(config: WorkerConfig) -> None:
    """What every entry point that starts a worker checks before its first job (the Lambda container here,
    `jobstack local` before its first invocation): every registered handler fits the function's timeout and
    names only rate limits the settings define. ConfigError in one line otherwise."""
    if config.function_timeout is not None:
        check_fits(config.function_timeout)
    check_rate_limits(config.rate_limits)


def reset() -> None:
    """Forget this container's runtime, closing its connections: after a SnapStart restore (its connections
    and secret belong to the snapshot), when a local invocation slot ends, and between tests."""
    runtime: Runtime | None = getattr(_container, "runtime", None)
    if runtime is not None:
        runtime.close()
    _container.runtime = None
