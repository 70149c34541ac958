"""Job types for workflow tests: members that succeed or fail on request, steps that pass results along,
and a callback that records what it saw (`ctx.dependencies()`), registered on both sides for one test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel

from tests.support.worker_support import job_type_for_test
from worker.registry import JobContext


class Step(BaseModel):
    n: int = 0
    fail: bool = False


@dataclass
class Seen:
    """Every run of the workflow types, thread-safe (jobstack local runs invocations in threads)."""

    runs: list[tuple[str, Any]] = field(default_factory=list)
    callbacks: list[list[tuple[str, str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def member(self, ctx: JobContext) -> object:
        with self.lock:
            self.runs.append(("member", ctx.payload["n"]))
        if ctx.payload["fail"]:
            raise RuntimeError(f"member {ctx.payload['n']} failed on request")
        return {"n": ctx.payload["n"]}

    def step(self, ctx: JobContext) -> object:
        """A chain's step: its result is the previous step's plus its own n (the first: its n)."""
        previous = ctx.previous_result() or {"total": 0}  # None: the first step
        with self.lock:
            self.runs.append(("step", previous))
        if ctx.payload["fail"]:
            raise RuntimeError(f"step {ctx.payload['n']} failed on request")
        assert isinstance(previous, dict)
        return {"total": previous["total"] + ctx.payload["n"]}

    def callback(self, ctx: JobContext) -> object:
        outcomes = [(str(d.job_id), d.status.value, d.result) for d in ctx.dependencies()]
        with self.lock:
            self.callbacks.append(outcomes)
        return {"members": len(outcomes)}


@pytest.fixture
def seen() -> Iterator[Seen]:
    recorder = Seen()
    with (
        job_type_for_test("wf-member", Step, recorder.member, max_attempts=1),
        job_type_for_test("wf-step", Step, recorder.step, max_attempts=1),
        job_type_for_test("wf-callback", Step, recorder.callback, max_attempts=2),
    ):
        yield recorder
