"""Deprecated: the repository is split by caller. Import from `db` (or the module that holds the name):

- db/lifecycle.py: the worker's claim, completion and failure (the claim rule, written once);
- db/relay.py: the sweeper's re-sends, releases, send records and pruning;
- db/admin.py: the operators' reads, retries and cancels;
- db/clock.py: `utcnow`.

Kept so existing `from db.repository import ...` lines keep working; it warns once when imported.
"""

from __future__ import annotations

import warnings

from .admin import (
    CancelReport,
    JobState,
    cancel_jobs,
    count_by_status_and_type,
    count_jobs,
    existing_job_ids,
    get_job,
    job_id_pages,
    job_states,
    list_jobs,
    oldest_pending,
    requeue_job,
)
from .clock import utcnow
from .lifecycle import (
    MAX_ERROR_CHARS,
    Claim,
    ClaimOutcome,
    cancel_requested,
    cancel_running,
    claim_job,
    complete_and_claim,
    complete_job,
    fail_job,
    truncate_error,
)
from .relay import (
    PRUNABLE,
    JobTypes,
    ResendWindows,
    abandoned_jobs,
    mark_sent,
    prune_jobs,
    take_due,
    take_for_resend,
    unmark_sent,
    unrelease,
)

__all__ = [
    "MAX_ERROR_CHARS",
    "PRUNABLE",
    "CancelReport",
    "Claim",
    "ClaimOutcome",
    "JobState",
    "JobTypes",
    "ResendWindows",
    "abandoned_jobs",
    "cancel_jobs",
    "cancel_requested",
    "cancel_running",
    "claim_job",
    "complete_and_claim",
    "complete_job",
    "count_by_status_and_type",
    "count_jobs",
    "existing_job_ids",
    "fail_job",
    "get_job",
    "job_id_pages",
    "job_states",
    "list_jobs",
    "mark_sent",
    "oldest_pending",
    "prune_jobs",
    "requeue_job",
    "take_due",
    "take_for_resend",
    "truncate_error",
    "unmark_sent",
    "unrelease",
    "utcnow",
]

warnings.warn(
    "db.repository is deprecated: import from db (or db.lifecycle, db.relay, db.admin, db.clock)",
    DeprecationWarning,
    stacklevel=2,
)
