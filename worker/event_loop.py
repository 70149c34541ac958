"""The invocation's one event loop, for `async def` handlers (worker/processing.py: `runs_together` says which
records run on it side by side): made at the batch's first async handler, closed with the batch, so a batch
with none makes none, and one invocation never runs two loops."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class InvocationLoop:
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
