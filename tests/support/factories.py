"""Rows made the way the publisher makes them, without sending a message (for repository tests)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from db import DB, Job, JobStatus, get_job, utcnow
from db.models import jobs_table


def insert_job(
    db: DB,
    *,
    type: str = "test-echo",
    payload: dict[str, Any] | None = None,
    status: JobStatus = JobStatus.PENDING,
    attempts: int = 0,
    max_attempts: int = 5,
    created_at: datetime | None = None,
    started_at: datetime | None = None,
    completed_at: datetime | None = None,
    updated_at: datetime | None = None,
    sent_at: datetime | None = None,
    idempotency_key: str | None = None,
    run_at: datetime | None = None,
    error: str | None = None,
    priority: str | None = None,
    traceparent: str | None = None,
    heartbeat_at: datetime | None = None,
    id: uuid.UUID | None = None,
    tenant: str | None = None,
) -> Job:
    now = utcnow()
    job_id = id or uuid.uuid4()
    with db.begin() as conn:
        conn.execute(
            jobs_table.insert().values(
                id=job_id,
                type=type,
                payload=payload or {},
                status=status.value,
                attempts=attempts,
                max_attempts=max_attempts,
                created_at=created_at or now,
                updated_at=updated_at or created_at or now,
                started_at=started_at,
                completed_at=completed_at,
                sent_at=sent_at,
                send_count=int(sent_at is not None),
                idempotency_key=idempotency_key,
                run_at=run_at,
                error=error,
                priority=priority,
                traceparent=traceparent,
                heartbeat_at=heartbeat_at,
                tenant=tenant,
            )
        )
    job = get_job(db, job_id)
    assert job is not None
    return job
