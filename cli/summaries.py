"""What a retry or a cancel did, in words: one summary line and one line per job it could not handle. The
CLI prints them (the summary on stdout, the rest on stderr) and the console shows the same lines."""

from __future__ import annotations

from cli.retrying import RetryReport
from db import CancelReport
from db.waits import Sent


def retried(report: RetryReport) -> tuple[str, list[str]]:
    summary = (
        f"retried {len(report.retried)} job(s); refused {len(report.refused)}; not found {len(report.missing)}; "
        f"message refused by SQS {len(report.unsent)} (pending: the sweeper sends them)"
    )
    details = [
        *(f"refused {job_id}: {why}" for job_id, _, why in report.refused),
        *(f"no job {job_id}" for job_id in report.missing),
        *(f"not sent {job_id}: {reason}" for job_id, reason in report.unsent.items()),
    ]
    return summary, details


def cancelled(report: CancelReport) -> tuple[str, list[str]]:
    summary = (
        f"cancelled {len(report.cancelled)} job(s); asked {len(report.asked_to_stop)} running job(s) to stop "
        "(they finish unless their handler checks ctx.cancel_requested())"
    )
    details = [
        *(f"refused {job_id}: it is {status}" for job_id, status in report.refused.items()),
        *(f"no job {job_id}" for job_id in report.missing),
    ]
    return summary, details


def signalled(sent: Sent) -> str:
    """What a signal by hand did (`jobstack signal`, the console's Signal), in one line."""
    return f"signal {sent.key}: {signal_outcome(sent)}"


def signal_outcome(sent: Sent) -> str:
    """The signal's outcome alone, as the audit trail records it."""
    if sent.released:
        return f"released {len(sent.released)} waiting job(s): " + ", ".join(str(job.id) for job in sent.released)
    if sent.kept:
        return "kept for the first wait on it"
    return "a signal for this key is kept already: the first stands"
