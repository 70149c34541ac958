"""What a test that drives `jobs` gets back: exit code, stdout and stderr (tests/cli/conftest.py's `jobs`
fixture runs the real entry point with argv)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Result:
    code: int
    out: str
    err: str


Jobs = Callable[..., Result]
