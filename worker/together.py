"""Which of a batch's records run together, and the invocation's one event loop that runs them.

A job whose handler is `async def` spends most of its time awaiting (an HTTP API, an LLM, S3): one after
another, a batch of 100 such jobs that each await 100 ms takes 10 s; together, about as long as the slowest.
So a batch runs its records in two phases, on one event loop per invocation (made at the first async
handler, closed with the batch):

1. In order, one after another: every record of a FIFO pool (its group's order is the point of FIFO), and
   every record whose handler is sync (it holds the thread while it runs). An async handler met here is run
   to its end on the loop before the next record starts.
2. Together: the rest, each record in a task of its own on the loop. What overlaps is the handlers' awaits:
   the worker's own steps (parse, claim, completion, a dead letter's send) are sync and short, and run one at
   a time between them, on the same thread, so the batch's completion (per job, or batched) holds exactly
   as in order, and each record's decision is its own.

The rules a handler meets are the same in both phases and for sync handlers: the time left is checked before
each claim (a record that cannot start in time is returned unclaimed), the batch's heartbeat keeps every
claim alive while any runs, `ctx.cancel_requested()` reads the operator's cancel. A sync call inside an async
handler (`ctx.step`, `ctx.cancel_requested`, a blocking client) holds the loop, and with it the other
records' handlers, while it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from worker.record import SqsRecord
from worker.runtime import Runnable, Runtime


def runs_together(runtime: Runtime, record: SqsRecord) -> bool:
    """Whether `record` runs in the batch's second phase: a standard pool, a job type with an async handler."""
    if record.group is not None or record.message is None:
        return False
    runnable = runtime.runnables.get(record.message.type)
    return isinstance(runnable, Runnable) and runnable.handler.is_async


class InvocationLoop:
    """The invocation's event loop, made when first needed (a batch with no async handler makes none)."""

    def __init__(self) -> None:
        self._runner: asyncio.Runner | None = None

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(coroutine)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None
