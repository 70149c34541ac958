"""Retry delays: exponential in the attempt number, jittered so a burst of failures does not return as a
burst, and capped so a job is retried within a bounded time."""

from __future__ import annotations

import random
from collections.abc import Callable


def retry_delay(attempt: int, *, base: int, cap: int, rand: Callable[[], float] = random.random) -> int:
    """Seconds until the next try after `attempt` failed: uniform in [d/2, d], d = min(cap, base x 2^(n-1))."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return int(ceiling / 2 + rand() * ceiling / 2)
