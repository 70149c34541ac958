"""A job type limited per concurrency key, for the flow-control tests: each run records its key's group and
its span, so a test can count how many ran at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from pydantic import BaseModel

from tests.support.worker_support import job_type_for_test
from worker.registry import JobContext

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
