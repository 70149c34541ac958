"""How long a job waited in the queue: from publish (or its run_at, if that is later) to its first attempt's
start. The one rule behind the worker's JobQueueWait metric and the percentiles of `jobstack stats` and the
console, so the metric and the tables always agree.

A retry is left out: its start is its last attempt's, so its publish-to-start time is mostly backoff, which
says nothing about how long the queue made it wait.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def queue_wait(
    created_at: datetime, run_at: datetime | None, started_at: datetime | None, attempts: int
) -> timedelta | None:
    """The first attempt's wait (never negative: two machines' clocks), or None for a retry or a job not
    started."""
    if attempts != 1 or started_at is None:
        return None
    since = max(created_at, run_at) if run_at is not None else created_at
    return max(started_at - since, timedelta(0))
