"""A job of three steps whose side effects go to a file, so a test can count them across processes (one of
which may be killed, with SIGKILL, in the middle of step two)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from worker.registry import JobContext

STEPPED = "stepped"


class Empty(BaseModel):
    pass


def stepped_handler(log: Path, *, die_in_step_two: bool = False) -> Callable[[JobContext], None]:
    def note(line: str) -> None:
        with log.open("a") as out:
            out.write(line + "\n")

    def two() -> None:
        note("two-started")
        if die_in_step_two:
            os.kill(os.getpid(), signal.SIGKILL)
        note("two-done")

    def handler(ctx: JobContext) -> None:
        ctx.step("one", lambda: note("one"))
        ctx.step("two", two)
        ctx.step("three", lambda: note("three"))

    return handler


def long_running(_ctx: JobContext) -> None:
    """A handler that outlives the test's patience: the test kills its process while it runs."""
    import time

    time.sleep(30)
