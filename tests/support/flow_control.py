"""A job type limited per concurrency key, for the flow-control tests: each run records its key's group and
its span, so a test can count how many ran at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel

from db import Queue, Router, Routes
from tests.support.esm import FakeLambdaContext, acknowledge, receive_event
from tests.support.queues import queue_pair
from tests.support.worker_support import job_type_for_test, make_config
from worker.batch import process_batch
from worker.registry import JobContext
from worker.runtime import Runtime

#: Jobs published with n at or above this belong to the "hot" key in these tests.
HOT = 100


class Keyed(BaseModel):
    n: int = 0


@dataclass
class Spans:
    runs: list[tuple[str, float, float]] = field(default_factory=list)  # ("hot" | "other", start, end)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, ctx: JobContext) -> None:
        started = time.monotonic()
        time.sleep(0.15)
        with self.lock:
            self.runs.append(("hot" if ctx.payload["n"] >= HOT else "other", started, time.monotonic()))

    def most_at_once(self, which: str | None = None) -> int:
        chosen = [(s, e) for key, s, e in self.runs if which is None or key == which]
        return max((sum(1 for s, e in chosen if s <= t < e) for t, _ in chosen), default=0)


@pytest.fixture
def tenants() -> Iterator[Spans]:
    """`tenant-sync`: at most 2 running jobs per concurrency key."""
    spans = Spans()
    with job_type_for_test("tenant-sync", Keyed, spans, max_attempts=3, concurrency_per_key=2):
        yield spans


@dataclass
class Starts:
    """When each run of a rate-limited type started (time.monotonic())."""

    times: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, ctx: JobContext) -> None:
        with self.lock:
            self.times.append(time.monotonic())

    def most_in_one_second(self) -> int:
        ordered = sorted(self.times)
        return max((sum(1 for t in ordered if start <= t < start + 1.0) for start in ordered), default=0)


@pytest.fixture
def limited() -> Iterator[Starts]:
    """`api-call`: each start takes a token of the limiter "api" (the test defines it in the settings)."""
    starts = Starts()
    with job_type_for_test("api-call", Keyed, starts, max_attempts=3, rate_limit="api"):
        yield starts


#: Jobs published with n at or above this are the high-priority ones in the priority tests.
HIGH = 1000


@dataclass
class Ranked:
    """When each run of `report` started, and in which pool's worker (a thread name set by the test)."""

    starts: list[tuple[int, float, str]] = field(default_factory=list)  # (n, time.monotonic(), pool)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, ctx: JobContext) -> None:
        with self.lock:
            self.starts.append((ctx.payload["n"], time.monotonic(), threading.current_thread().name.split(":")[0]))
        time.sleep(0.02)

    def order(self) -> list[int]:
        """The jobs' n in the order they started."""
        return [n for n, _, _ in sorted(self.starts, key=lambda s: s[1])]


@pytest.fixture
def ranked() -> Iterator[Ranked]:
    """`report`: 20 ms of work; each start is recorded with the pool that ran it."""
    runs = Ranked()
    with job_type_for_test("report", Keyed, runs, max_attempts=3):
        yield runs


@pytest.fixture
def lane(sqs: Any) -> tuple[Queue, Queue]:
    """The `urgent` pool's queue and DLQ: the lane of priority "high"."""
    return queue_pair(sqs, "urgent", VisibilityTimeout="60")


def lane_router(sqs: Any, default: Queue, urgent: Queue, **extra_queues: str) -> Router:
    """Routes with the lane of priority "high" (pool `urgent`); `extra_queues` add pools (`ledger` runs
    `ledger-post`)."""
    return Router(
        sqs,
        Routes(
            queues={"default": default.url, "urgent": urgent.url, **extra_queues},
            types={"ledger-post": "ledger"} if extra_queues else {},
            stack="JobsStack-dev",
            priorities={"high": "urgent"},
        ),
    )


def containers(pg_url: str, pool: str, queues: tuple[Queue, Queue], count: int, sqs: Any, stop: Any) -> list[Any]:
    """`count` threads, each a Lambda container of `pool` polling its queue as the event source mapping does
    (batches of up to 10; the records the response does not list are deleted) until `stop` is set."""

    def poll() -> None:
        runtime = Runtime(make_config(pg_url, *queues), sqs=sqs)
        try:
            while not stop.is_set():
                event = receive_event(queues[0])
                if event["Records"]:
                    acknowledge(queues[0], event, process_batch(event, FakeLambdaContext(), runtime))
                else:
                    time.sleep(0.05)
        finally:
            runtime.close()

    return [threading.Thread(target=poll, name=f"{pool}:{i}", daemon=True) for i in range(count)]


@dataclass
class TenantRuns:
    """Each run of a tenant-limited type: its tenant, start and end (time.monotonic()), `seconds` of work each."""

    seconds: float = 0.05
    runs: list[tuple[str, float, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, ctx: JobContext) -> None:
        started = time.monotonic()
        time.sleep(self.seconds)
        with self.lock:
            self.runs.append((ctx.tenant or "", started, time.monotonic()))

    def most_at_once(self, tenant: str) -> int:
        """The most runs of `tenant` that overlapped at any instant."""
        spans = [(s, e) for t, s, e in self.runs if t == tenant]
        return max((sum(1 for s, e in spans if s <= t < e) for t, _ in spans), default=0)

    def ends(self, tenant: str) -> list[float]:
        return sorted(e for t, _, e in self.runs if t == tenant)

    def starts_of_others(self, tenant: str) -> list[float]:
        return sorted(s for t, s, _ in self.runs if t != tenant)
