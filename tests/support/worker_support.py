"""Worker fixtures (a runtime on the real test database and moto queues, and a counting job type), shared
by the worker, CLI and infra tests through `pytest_plugins` in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from db import DB, Queue, register_job_type
from db.job_types import unregister_job_type
from tests.support.queues import queue_pair
from worker import registry
from worker.config import WorkerConfig
from worker.registry import JobContext
from worker.runtime import Runtime


def fifo_pair(sqs: Any, name: str) -> tuple[Queue, Queue]:
    """A FIFO queue with its FIFO DLQ and redrive, as a FIFO pool has."""
    return queue_pair(sqs, name, fifo=True, max_receive_count=10, VisibilityTimeout="60")


def make_config(pg_url: str, queue: Queue, dlq: Queue, **overrides: Any) -> WorkerConfig:
    settings: dict[str, Any] = {
        "database_url": pg_url,
        "database_secret_arn": None,
        "queue_url": queue.url,
        "dlq_url": dlq.url,
        "stale_after": timedelta(minutes=5),
        "min_time_left": timedelta(seconds=2),
    }
    return WorkerConfig(**settings | overrides)


@pytest.fixture
def runtime(pg_url: str, pg_db: DB, queue: Queue, dlq: Queue) -> Runtime:
    return Runtime(make_config(pg_url, queue, dlq), db=pg_db, sqs=queue.client)


@pytest.fixture
def pg_runtime(pg_url: str, pg_db: DB, queue: Queue, dlq: Queue) -> Runtime:
    """`runtime` by another name, for a module whose `runtime` runs on both databases (tests/workflows)."""
    return Runtime(make_config(pg_url, queue, dlq), db=pg_db, sqs=queue.client)


@pytest.fixture
def any_runtime(any_db: DB, queue: Queue, dlq: Queue) -> Runtime:
    """`runtime` on each supported database in turn (the test asks for `any_db` too)."""
    url = any_db.engine.url.render_as_string(hide_password=False)
    return Runtime(make_config(url, queue, dlq), db=any_db, sqs=queue.client)


@dataclass
class Calls:
    """Records every run of the `count-calls` handler; `behaviour` decides what a run does."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    behaviour: Any = None

    def __call__(self, ctx: JobContext) -> object:
        """The behaviour's return value is the handler's (a result, or `ctx.snooze(...)`)."""
        self.runs.append({"job_id": ctx.job_id, "attempt": ctx.attempt, "payload": ctx.payload})
        return self.behaviour(ctx) if self.behaviour is not None else None


class CountCalls(BaseModel):
    n: int = 0


@contextmanager
def job_type_for_test(
    name: str,
    schema: type[BaseModel],
    handler: Any,
    *,
    max_attempts: int,
    transactional: bool = False,
    concurrency_per_key: int | None = None,
    rate_limit: str | None = None,
    max_duration_seconds: int | None = None,
    max_pending_per_tenant: int | None = None,
    **tenant_limits: Any,
) -> Iterator[None]:
    """A job type and its handler, registered on both sides (db and worker) for one test, then removed.
    `tenant_limits`: @job's tenant_concurrency, tenant_rate_limit, tenant_group."""
    register_job_type(name, schema, max_attempts=max_attempts, max_pending_per_tenant=max_pending_per_tenant)
    try:
        registry.job(
            name,
            transactional=transactional,
            concurrency_per_key=concurrency_per_key,
            rate_limit=rate_limit,
            max_duration_seconds=max_duration_seconds,
            **tenant_limits,
        )(handler)
        yield
    finally:
        registry.unregister(name)
        unregister_job_type(name)


@pytest.fixture
def calls() -> Iterator[Calls]:
    recorder = Calls()
    with job_type_for_test("count-calls", CountCalls, recorder, max_attempts=3):
        yield recorder
