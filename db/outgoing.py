"""Deprecated: split into what each part holds. Import from `db`, or from the module that holds the name:

- db/sqs_limits.py: SQS's size, delay and batch limits;
- db/destinations.py: `Queue` and the `Destination` protocol (`db.routes.Router` is the other destination);
- db/preparation.py: `JobRequest`, the checks before a row is written, the row and its message;
- db/rows.py: the INSERT that honours idempotency keys (`write_rows`);
- db/sending.py: sending messages within SQS's batch rules (`send_all`, `send_args`, `fifo_arguments`).

Kept so existing imports keep working: each name is looked up where it lives now, with a
DeprecationWarning that says where. `Outgoing.again` is now `Outgoing.resend_of`, and `Prepared.of_job`
is `Prepared.first_send_of`.
"""

from __future__ import annotations

from .deprecation import moved_names

#: Each name this module held, and the module that holds it now.
MOVED = {
    **dict.fromkeys(
        ("DLQ_ATTRIBUTE_RESERVE", "SQS_BATCH_ENTRIES", "SQS_MAX_DELAY_SECONDS", "SQS_MAX_MESSAGE_BYTES"), "sqs_limits"
    ),
    **dict.fromkeys(("Destination", "Queue"), "destinations"),
    **dict.fromkeys(("MAX_SCHEDULE_AHEAD", "JobRequest", "Outgoing", "Prepared", "check_keys_within"), "preparation"),
    **dict.fromkeys(("check_same_payload", "delay_until", "key_of", "prepare", "unsent"), "preparation"),
    **dict.fromkeys(("existing_jobs", "insert_ignoring_duplicates", "write_rows"), "rows"),
    **dict.fromkeys(("describe_error", "fifo_arguments", "send_all", "send_args"), "sending"),
}
__all__ = sorted(MOVED)

__getattr__ = moved_names(__name__, MOVED)
