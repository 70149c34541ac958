"""Deprecated: the repository is split by caller. Import from `db` (or the module that holds the name):

- db/lifecycle.py: the worker's claim, completion and failure (the claim rule, written once);
- db/relay.py: the sweeper's re-sends, releases, send records and pruning;
- db/admin.py: the operators' reads, retries and cancels;
- db/clock.py: `utcnow`.

Kept so existing `from db.repository import ...` lines keep working: each name is looked up where it
lives now, with a DeprecationWarning that says where.
"""

from __future__ import annotations

from .deprecation import moved_names

#: Each name this module held, and the module that holds it now.
MOVED = {
    **dict.fromkeys(
        ("MAX_ERROR_CHARS", "Claim", "ClaimOutcome", "cancel_requested", "cancel_running", "claim_job"), "lifecycle"
    ),
    **dict.fromkeys(("complete_and_claim", "complete_job", "fail_job", "truncate_error"), "lifecycle"),
    **dict.fromkeys(("PRUNABLE", "JobTypes", "ResendWindows", "abandoned_jobs", "mark_sent", "prune_jobs"), "relay"),
    **dict.fromkeys(("take_due", "take_for_resend", "unmark_sent", "unrelease"), "relay"),
    **dict.fromkeys(("CancelReport", "JobState", "cancel_jobs", "count_by_status_and_type", "count_jobs"), "admin"),
    **dict.fromkeys(("existing_job_ids", "get_job", "job_id_pages", "job_states", "list_jobs"), "admin"),
    **dict.fromkeys(("oldest_pending", "requeue_job"), "admin"),
    "utcnow": "clock",
}
__all__ = sorted(MOVED)

__getattr__ = moved_names(__name__, MOVED)
