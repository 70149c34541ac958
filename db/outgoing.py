"""Deprecated: split into what each part holds. Import from `db`, or from:

- db/sqs_limits.py: SQS's size, delay and batch limits;
- db/destinations.py: `Queue` and the `Destination` protocol (`db.routes.Router` is the other destination);
- db/preparation.py: `JobRequest`, the checks before a row is written, the row and its message;
- db/rows.py: the INSERT that honours idempotency keys (`write_rows`);
- db/sending.py: sending messages within SQS's batch rules (`send_all`, `send_args`, `fifo_arguments`).

Kept so existing imports keep working; it warns once when imported. `Outgoing.again` is now
`Outgoing.resend_of`, and `Prepared.of_job` is `Prepared.first_send_of`.
"""

from __future__ import annotations

import warnings

from .destinations import Destination, Queue
from .preparation import (
    MAX_SCHEDULE_AHEAD,
    JobRequest,
    Outgoing,
    Prepared,
    check_keys_within,
    check_same_payload,
    delay_until,
    key_of,
    prepare,
    unsent,
)
from .rows import existing_jobs, insert_ignoring_duplicates, write_rows
from .sending import describe_error, fifo_arguments, send_all, send_args
from .sqs_limits import DLQ_ATTRIBUTE_RESERVE, SQS_BATCH_ENTRIES, SQS_MAX_DELAY_SECONDS, SQS_MAX_MESSAGE_BYTES

__all__ = [
    "DLQ_ATTRIBUTE_RESERVE",
    "MAX_SCHEDULE_AHEAD",
    "SQS_BATCH_ENTRIES",
    "SQS_MAX_DELAY_SECONDS",
    "SQS_MAX_MESSAGE_BYTES",
    "Destination",
    "JobRequest",
    "Outgoing",
    "Prepared",
    "Queue",
    "check_keys_within",
    "check_same_payload",
    "delay_until",
    "describe_error",
    "existing_jobs",
    "fifo_arguments",
    "insert_ignoring_duplicates",
    "key_of",
    "prepare",
    "send_all",
    "send_args",
    "unsent",
    "write_rows",
]

warnings.warn(
    "db.outgoing is deprecated: import from db (or db.destinations, db.preparation, db.rows, db.sending, "
    "db.sqs_limits)",
    DeprecationWarning,
    stacklevel=2,
)
