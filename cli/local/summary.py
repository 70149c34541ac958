"""`jobstack local`'s live summary: what happened to the jobs so far, redrawn once a second on a terminal.

It reads the truth rather than the runner's guesses: job counts from the database (completed, failed,
waiting for a retry, in flight), the DLQ's depth from SQS, and the rate from completions over time.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from cli.local.runner import RunStats
from db import DB, count_by_status_and_type


def render(counts: dict[str, int], dlq_depth: int, stats: RunStats, completed_per_second: float) -> str:
    return (
        f"completed {counts.get('completed', 0)}, failed {counts.get('failed', 0)}, "
        f"in flight {counts.get('processing', 0)}, waiting {counts.get('pending', 0)}, "
        f"dead-lettered {dlq_depth} | {stats.invocations} invocations, {completed_per_second:,.0f} jobs/s"
    )


class LiveSummary:
    def __init__(self, db: DB, sqs: Any, dlq_url: str, stream: TextIO | None = None) -> None:
        self.db, self.sqs, self.dlq_url = db, sqs, dlq_url
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self._started = time.monotonic()
        self._completed_at_start = self.counts().get("completed", 0)  # the rate is this run's

    def counts(self) -> dict[str, int]:
        by_status: dict[str, int] = {}
        for (status, _type), n in count_by_status_and_type(self.db).items():
            by_status[status] = by_status.get(status, 0) + n
        return by_status

    def line(self, stats: RunStats) -> str:
        counts = self.counts()
        completed = counts.get("completed", 0)
        if self._completed_at_start is None:
            self._completed_at_start = completed
        elapsed = max(time.monotonic() - self._started, 1e-6)
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        dlq_depth = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        return render(counts, dlq_depth, stats, (completed - self._completed_at_start) / elapsed)

    def tick(self, stats: RunStats) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[2K" + self.line(stats))
            self.stream.flush()

    def close(self, stats: RunStats) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[2K")
        self.stream.write(self.line(stats) + "\n")
