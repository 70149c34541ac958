"""What a test that drives `jobstack` gets back: exit code, stdout and stderr (tests/cli/conftest.py's `jobstack`
fixture runs the real entry point with argv)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass
class Result:
    code: int
    out: str
    err: str


Jobs = Callable[..., Result]


def restoring_environ() -> Iterator[None]:
    """`jobstack local` exports the worker's settings into os.environ, as a shell would: an autouse fixture of
    this undoes that per test (tests/cli and tests/console use it)."""
    saved = dict(os.environ)
    yield None
    os.environ.clear()
    os.environ.update(saved)
