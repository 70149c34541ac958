"""Retrying jobs: fresh attempts and a new message each, ten messages per SQS call. One implementation for
`jobstack retry` and the console's retry button, so both refuse, send and report the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from uuid import UUID

from db import DB, Job, JobStatus, get_job, mark_sent, requeue_job, resend
from db.destinations import Destination
from db.steps import forget_steps

RETRY_BATCH = 10  # SQS's SendMessageBatch maximum


@dataclass
class RetryReport:
    retried: list[UUID] = field(default_factory=list)
    refused: list[tuple[UUID, str, str]] = field(default_factory=list)  # id, status, why
    missing: list[UUID] = field(default_factory=list)
    unsent: dict[UUID, str] = field(default_factory=dict)  # pending rows SQS refused: the sweeper sends them

    @property
    def clean(self) -> bool:
        return not self.refused and not self.missing and not self.unsent


def retry_jobs(
    db: DB,
    destination: Destination,
    pages: Iterable[list[UUID]],
    *,
    force: bool = False,
    from_scratch: bool = False,
    progress: Callable[[int], None] = lambda _n: None,
) -> RetryReport:
    """Retry every job of `pages`; it goes on past jobs it may not retry and messages SQS refuses (their
    rows are pending: the sweeper sends them), and reports each. A retried job keeps its completed steps
    (`ctx.step`: they are not run again) unless `from_scratch`, which forgets them in the transaction that
    makes it pending, before its message is sent."""
    report = RetryReport()
    for page in pages:
        for start in range(0, len(page), RETRY_BATCH):
            chunk = page[start : start + RETRY_BATCH]
            requeued = []
            for job_id in chunk:
                with db.begin() as conn:
                    job = requeue_job(conn, job_id, force=force)
                    if job is not None and from_scratch:
                        forget_steps(conn, [job.id])
                if job is not None:
                    requeued.append(job)
                elif (current := get_job(db, job_id)) is None:
                    report.missing.append(job_id)
                else:
                    report.refused.append((job_id, current.status.value, why_not_retried(current)))
            failures = resend(requeued, queue=destination)
            report.unsent.update(failures)
            mark_sent(db, [j.id for j in requeued if j.id not in failures])
            report.retried.extend(j.id for j in requeued)
            progress(len(chunk))
    return report


def why_not_retried(job: Job) -> str:
    """One clause: what the job is, and whether --force would retry it anyway."""
    if job.status is JobStatus.PENDING:
        return "it is pending, its message already queued: --force sends a second one"
    if job.status is JobStatus.FAILED:
        return (
            f"it failed with attempts left ({job.attempts} of {job.max_attempts}) and its retry is queued: "
            "--force gives fresh attempts now"
        )
    if job.status in (JobStatus.COMPLETED, JobStatus.CANCELLED):
        return f"it is {job.status.value} (use --force to run it again)"
    if job.status is JobStatus.WAITING:
        return f"it waits for {job.waiting_on} job(s) to finish and runs when they have (jobstack show {job.id})"
    return f"it is {job.status.value}"
