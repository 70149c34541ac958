"""The `background_jobs` table: the source of truth for every job's state.

Rules that belong to the data are enforced by the database (status set, attempt bounds, one job per
(type, idempotency key)), so a buggy client or a hand-typed `UPDATE` cannot create an impossible row.
Timestamps are timezone-aware everywhere; SQLite, which has no timezone type, stores UTC and gets the
zone back on read.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class UTCDateTime(TypeDecorator[datetime]):
    """`timestamptz` on PostgreSQL; on SQLite, UTC text that reads back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timezone-aware column: pass datetime.now(UTC)")
        return value if dialect.name == "postgresql" else value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonDocument = JSON().with_variant(JSONB(), "postgresql")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}

STATUS_VALUES = ", ".join(f"'{s.value}'" for s in JobStatus)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class BackgroundJob(Base):
    __tablename__ = "background_jobs"
    __table_args__ = (
        CheckConstraint(f"status IN ({STATUS_VALUES})", name="status"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
        CheckConstraint("send_count >= 0", name="send_count_not_negative"),
        UniqueConstraint("type", "idempotency_key"),
        # Listing by status newest-first, and the sweeper's "pending/processing older than T".
        Index(None, "status", "created_at"),
        # Listing everything newest-first and `--since` filters without a status.
        Index(None, "created_at"),
        # The sweeper's "pending and untouched for T" (updated_at moves when it re-sends).
        Index(None, "status", "updated_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    type: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.PENDING.value, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When SQS last accepted a message for this job (None: never confirmed). The sweeper re-sends only
    #: what was never sent or whose message must have left the queue, instead of every old row per run.
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Messages sent for this job: 1 after a normal publish; more means the sweeper or an operator re-sent.
    send_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


jobs_table = cast(Table, BackgroundJob.__table__)  # declarative tables are Tables


@dataclass(frozen=True)
class Job:
    """A read-only snapshot of one row, as repository functions return it (safe to pass across threads)."""

    id: uuid.UUID
    type: str
    payload: dict[str, Any]
    status: JobStatus
    attempts: int
    max_attempts: int
    error: str | None
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    sent_at: datetime | None = None
    send_count: int = 0

    @property
    def attempts_left(self) -> int:
        return max(self.max_attempts - self.attempts, 0)

    @classmethod
    def from_row(cls, row: Any) -> Job:
        m = row._mapping
        return cls(**{f: m[f] for f in _JOB_FIELDS} | {"status": JobStatus(m["status"])})


_JOB_FIELDS = [c.name for c in jobs_table.columns]
