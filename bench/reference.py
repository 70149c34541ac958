"""The seeds' worker pattern, written plainly, as the yardstick for our own per-job cost.

The TypeScript notes this project grew from process each SQS record as: look the job up, mark it
`processing`, run the handler, mark it `completed` (or `failed`), each step its own transaction. This module
is that pattern in Python against the same table and the same engine, so the benchmark compares designs, not
drivers. It has none of our guarantees (no claim guard against duplicates, no stale reclaim, no attempts
cap); it is here only to be timed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from db import DB
from db.models import JobStatus, jobs_table

Handler = Callable[[dict[str, Any]], None]


def process_record(db: DB, record: dict[str, Any], handlers: dict[str, Handler]) -> None:
    """Seeds steps 2-4 for one record; an exception propagates so SQS would redeliver the message."""
    message = json.loads(record["body"])
    table = jobs_table
    with db.begin() as conn:  # 3a. look up the job
        row = conn.execute(select(table).where(table.c.id == message["jobId"])).mappings().one_or_none()
    if row is None:
        raise LookupError(f"job {message['jobId']} not found")
    with db.begin() as conn:  # 3b. mark it processing
        conn.execute(
            update(table)
            .where(table.c.id == row["id"])
            .values(status=JobStatus.PROCESSING.value, attempts=row["attempts"] + 1, updated_at=_now())
        )
    try:
        handlers[row["type"]](row["payload"])  # 3c. run the handler
    except Exception as err:
        with db.begin() as conn:  # 4b. on failure: failed, with the error
            conn.execute(
                update(table)
                .where(table.c.id == row["id"])
                .values(status=JobStatus.FAILED.value, error=str(err), updated_at=_now())
            )
        raise
    with db.begin() as conn:  # 4a. on success: completed
        conn.execute(
            update(table)
            .where(table.c.id == row["id"])
            .values(status=JobStatus.COMPLETED.value, completed_at=_now(), updated_at=_now())
        )


def handle(db: DB, event: dict[str, Any], handlers: dict[str, Handler]) -> None:
    """The seeds' Lambda handler: records in order, the first error fails the whole batch."""
    for record in event["Records"]:
        process_record(db, record, handlers)


def _now() -> datetime:
    return datetime.now(UTC)
