"""Cancelling jobs: one implementation for `jobstack cancel` and the console's cancel button, so both refuse,
write and send the same way.

A cancel does all it says or nothing. Cancelling a job others wait for may release them (`on_failure`
"continue"), and a released job must be sent; without a queue that send cannot happen, so such a cancel is
refused before anything is written. A cancel that can release nothing (no job of the selection has
dependents) needs no queue: an operator with only DATABASE_URL can stop a pending or scheduled job.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from cli.errors import USAGE, CliError
from cli.target import Target
from db import DB, CancelReport, cancel_jobs
from db.admin import waited_for
from db.publishing import send_released


def cancel_and_send(db: DB, target: Target, pages: Iterable[list[UUID]]) -> CancelReport:
    """Cancel every job of `pages`, then send the jobs that released (CliError first, when that needs a queue
    `target` does not name)."""
    if not target.has_queue:
        pages = [list(page) for page in pages]
        waited = waited_for(db, [job_id for page in pages for job_id in page])
        if waited:
            raise CliError(
                f"job {waited[0]} has jobs waiting for it, which cancelling it may release and must then send: "
                "pass --queue-url URL, set QUEUE_URL, or --env ENV (nothing was cancelled)",
                USAGE,
            )
    reports = [cancel_jobs(db, page) for page in pages]
    released = [job_id for report in reports for job_id in report.released]
    if released:  # jobs that run after a cancelled one anyway: what SQS refuses, the sweeper's relay sends
        send_released(db, released, queue=target.destination)
    return CancelReport(
        cancelled=[i for r in reports for i in r.cancelled],
        asked_to_stop=[i for r in reports for i in r.asked_to_stop],
        refused={k: v for r in reports for k, v in r.refused.items()},
        missing=[i for r in reports for i in r.missing],
        released=released,
    )
