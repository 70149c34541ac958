"""The sweeper: a scheduled Lambda entry (`worker.sweeper.handler`) that repairs what delivery missed.

- Pending jobs untouched for `SWEEP_PENDING_AFTER_SECONDS`: the publisher committed the row but its
  SendMessage failed (or the process died between the two). The sweeper sends them: the outbox relay.
- Processing jobs whose invocation died long ago (older than the stale window): with attempts left they
  are re-sent, so they run again even if their message already went to the DLQ; with none left they are
  marked failed ("abandoned: worker did not finish").

Safe to run twice, or concurrently: re-sent jobs get `updated_at` moved so the next run skips them, every
change is a conditional UPDATE, and a duplicate message is harmless to the worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from db import Queue, fail_job, pending_older_than, processing_older_than, resend, touch_jobs
from db.repository import utcnow
from worker.config import log_level_number
from worker.observability import LOGGER_NAME, configure_logging
from worker.processing import ABANDONED
from worker.runtime import Runtime

log = logging.getLogger(LOGGER_NAME)


@dataclass
class SweepReport:
    resent_pending: list[UUID] = field(default_factory=list)
    resent_stale: list[UUID] = field(default_factory=list)
    abandoned: list[UUID] = field(default_factory=list)
    send_failures: dict[UUID, str] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        return {
            "resent_pending": len(self.resent_pending),
            "resent_stale": len(self.resent_stale),
            "abandoned": len(self.abandoned),
            "send_failures": len(self.send_failures),
        }


def sweep(runtime: Runtime, *, now: datetime | None = None) -> SweepReport:
    config, db = runtime.config, runtime.db
    now = now or utcnow()
    queue = Queue(runtime.sqs, config.queue_url)
    report = SweepReport()

    pending = pending_older_than(db, config.sweep_pending_after, limit=config.sweep_batch_limit, now=now)
    if pending:
        report.send_failures.update(resend(pending, queue=queue))
        sent = [j.id for j in pending if j.id not in report.send_failures]
        touch_jobs(db, sent, now=now)
        report.resent_pending = sent

    stale = processing_older_than(db, config.stale_after, limit=config.sweep_batch_limit, now=now)
    retry = [j for j in stale if j.attempts < j.max_attempts]
    for job in stale:
        if job.attempts >= job.max_attempts and fail_job(db, job.id, ABANDONED, attempt=job.attempts, now=now):
            report.abandoned.append(job.id)
    if retry:
        failures = resend(retry, queue=queue)
        report.send_failures.update(failures)
        report.resent_stale = [j.id for j in retry if j.id not in failures]
    return report


_runtime: Runtime | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    global _runtime
    if _runtime is None:
        _runtime = Runtime.from_environ()
        configure_logging(log_level_number(_runtime.config))
    report = sweep(_runtime)
    summary = report.summary()
    level = logging.ERROR if report.send_failures else logging.INFO
    log.log(level, "sweep finished", extra=summary)
    return summary
