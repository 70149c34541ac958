"""An ORM class over `background_jobs`, for web apps that use SQLAlchemy's ORM (the worker does not).

Imported only when asked for (`from db.orm import BackgroundJob`, or `db.BackgroundJob`), so the ORM's
import cost stays off the worker's cold start. It maps the Core table in db/models.py, the one definition
the migrations follow.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import DeclarativeBase, Mapped

from .models import jobs_table, metadata


class Base(DeclarativeBase):
    metadata = metadata


class BackgroundJob(Base):
    __table__ = jobs_table

    id: Mapped[uuid.UUID]
    type: Mapped[str]
    payload: Mapped[dict[str, Any]]
    status: Mapped[str]
    attempts: Mapped[int]
    max_attempts: Mapped[int]
    error: Mapped[str | None]
    idempotency_key: Mapped[str | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    send_count: Mapped[int]
