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
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeEngine

from .queue_wait import queue_wait


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # never runs (again); a running job is asked to stop instead (cancel_requested_at)
    SCHEDULED = "scheduled"  # runs at run_at, beyond SQS's 15-minute delay: no message until the sweeper releases it
    #: Waits for other jobs to finish (a group's callback, a chain's next step, `after=`): no message until the
    #: last of them finishes and the statement that settles it makes this one pending (db/dependencies.py).
    WAITING = "waiting"


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


class JsonDocument(TypeDecorator[Any]):
    """`jsonb` on PostgreSQL, JSON elsewhere. PostgreSQL's JSONB type is looked up when a dialect asks for it,
    not at import: importing `sqlalchemy.dialects.postgresql` loads every PostgreSQL driver's dialect (20 ms
    of the worker's cold start), which a connection loads anyway, once, when it is first made."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        none_as_null = bool(getattr(self.impl, "none_as_null", False))  # Python None as SQL NULL, not JSON null
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB(none_as_null=none_as_null))
        return dialect.type_descriptor(JSON(none_as_null=none_as_null))


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
}

STATUS_VALUES = ", ".join(f"'{s.value}'" for s in JobStatus)
metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: SQLAlchemy Core, not the ORM's declarative layer: the worker's path runs Core statements only, and the ORM
#: costs 37 ms of every cold start. An ORM class for web apps that want one is `db.orm.BackgroundJob`.
jobs_table = Table(
    "background_jobs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("type", String(128), nullable=False),
    Column("payload", JsonDocument, nullable=False),
    Column("status", String(16), nullable=False, default=JobStatus.PENDING.value, server_default="pending"),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("max_attempts", Integer, nullable=False),
    Column("error", Text),
    Column("idempotency_key", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("completed_at", UTCDateTime),
    #: When SQS last accepted a message for this job (None: never confirmed). The sweeper re-sends only what
    #: was never sent or whose message must have left the queue, instead of every old row per run.
    Column("sent_at", UTCDateTime),
    #: Messages sent for this job: 1 after a normal publish; more means the sweeper or an operator re-sent.
    Column("send_count", Integer, nullable=False, default=0, server_default="0"),
    # When `jobstack cancel` asked a running job to stop (migration 0003); the handler polls it.
    Column("cancel_requested_at", UTCDateTime),
    Column("run_at", UTCDateTime),  # a scheduled job's time (migration 0004); None: as soon as possible
    Column("ordering_key", String(128)),  # FIFO: the message group its messages go to (migration 0005)
    # Workflows (migration 0008, db/dependencies.py): how many of the jobs this one waits for have not finished
    # yet; what a failure among them does to it ("cancel" it, or "continue" and run it anyway; None: it waits
    # for nothing); the group or chain it belongs to; and what its handler returned (JSON, RESULT_MAX_BYTES).
    Column("waiting_on", Integer, nullable=False, default=0, server_default="0"),
    # Whether a job waits for this one: its completion then settles them in the same statement; a plain
    # job's completion is the lean statement it always was (db/lifecycle.py).
    Column("has_dependents", Boolean, nullable=False, default=False, server_default=false()),
    Column("on_failure", String(8)),
    Column("workflow_id", Uuid),
    Column("result", JsonDocument(none_as_null=True)),
    # One job per (type, unique_key) among those not started yet (migration 0009's partial unique index,
    # declared there only): db/uniqueness.py.
    Column("unique_key", String(255)),
    # At most the handler's `concurrency_per_key` jobs of a type with this key run at once (migration 0009's
    # partial index of the running ones): db/claiming/concurrency_gate.py.
    Column("concurrency_key", String(255)),
    # The priority lane it was published to (migration 0010): every later send goes to that lane's queue.
    Column("priority", String(32)),
    # The publisher's W3C trace context (migration 0011, db/trace_context.py): every send of the job carries
    # it, so the job's spans link to the request that published it.
    Column("traceparent", String(55)),
    # What the handler last reported (`ctx.progress`, migration 0012): for `jobstack show`, the console and
    # the web app (db/steps.py); when the invocation holding it last said it is alive (its claim, then
    # worker/heartbeat.py): the stale-claim rule (db/states.py: STALE) reads it before the start time.
    Column("progress", Float),
    Column("progress_message", String(255)),
    Column("heartbeat_at", UTCDateTime),
    # The invocation holding its latest attempt (migration 0016, set by every claim: db/claiming/params.py's
    # Invocation): its Lambda request id and X-Ray trace id, copied into its attempt's history when it ends.
    Column("request_id", String(64)),
    Column("trace_id", String(64)),
    # A wait (migration 0017, db/waits.py): the signal key a `waiting` job waits for (its run_at is the wait's
    # timeout), and what ended its last wait (the signal's payload, or its timeout), for its wait step to read.
    # Their partial index (ix_background_jobs_wait_key, WHERE status = 'waiting') is declared there only.
    Column("wait_key", String(255)),
    Column("wait_result", JsonDocument(none_as_null=True)),
    # The customer the job is for (migration 0018): a standard queue's MessageGroupId (SQS fair queues). Its
    # partial indexes (migration 0019, declared there only): by tenant and status over the unfinished jobs
    # (ix_background_jobs_tenant_unfinished: counts, the claim's and the quota's), and by tenant and
    # created_at (ix_background_jobs_tenant_created: one tenant's jobs, newest first).
    Column("tenant", String(128)),
    CheckConstraint(f"status IN ({STATUS_VALUES})", name="status"),
    CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
    CheckConstraint("send_count >= 0", name="send_count_not_negative"),
    CheckConstraint("waiting_on >= 0", name="waiting_on_not_negative"),
    CheckConstraint("on_failure IN ('cancel', 'continue')", name="on_failure"),
    UniqueConstraint("type", "idempotency_key"),
    # Listing by status newest-first, and the sweeper's "pending/processing older than T".
    Index(None, "status", "created_at"),
    # Listing everything newest-first and `--since` filters without a status.
    Index(None, "created_at"),
    # The sweeper's windows and pruning: "status and last changed before T".
    Index(None, "status", "updated_at"),
    Index(None, "status", "run_at"),  # the sweeper's release: scheduled jobs due within its window
    # The console's job list filtered by type (migration 0006). Its filter by idempotency key has a partial
    # index too, `ix_background_jobs_idempotency_key` (WHERE idempotency_key IS NOT NULL), declared in the
    # migration only: `postgresql_where` here would load SQLAlchemy's PostgreSQL dialect on every import of
    # this module, 20 ms of the worker's cold start. tests/db/test_migrations.py checks it exists, partial.
    Index(None, "type", "created_at"),
    # `jobstack list --group`, `jobstack show`'s workflow and `jobstack cancel --group` (migration 0008;
    # partial, declared there only, as the idempotency key's: most jobs belong to no workflow):
    # ix_background_jobs_workflow_id.
)

#: One token bucket per named rate limiter (migration 0009, db/rate_limits.py): the tokens left at updated_at.
rate_limiters_table = Table(
    "rate_limiters",
    metadata,
    Column("name", String(200), primary_key=True),  # a limiter (64), or its bucket of a tenant (migration 0019)
    Column("tokens", Float, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: Which job waits for which (migration 0008): one row per (prerequisite, dependent), settled once, when the
#: prerequisite finishes, by the statement that finishes it or, after a crash, by the sweeper. Deleting a
#: job (pruning) deletes its rows here. `position` keeps the order the prerequisites were given in (a
#: group's members, for its callback's `ctx.dependencies()`).
dependencies_table = Table(
    "job_dependencies",
    metadata,
    Column("prerequisite_id", Uuid, ForeignKey("background_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("job_id", Uuid, ForeignKey("background_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("settled_at", UTCDateTime),
    PrimaryKeyConstraint("prerequisite_id", "job_id"),
    CheckConstraint("prerequisite_id <> job_id", name="not_itself"),
    Index(None, "job_id", "position"),
)

#: The steps a job's handler completed (migration 0012, db/steps.py), in the order they ran: each one's
#: result is read back instead of running it again. Deleting a job (pruning) deletes its steps.
steps_table = Table(
    "job_steps",
    metadata,
    Column("job_id", Uuid, ForeignKey("background_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(128), nullable=False),
    Column("result", Text),
    Column("attempt", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("job_id", "position"),
    UniqueConstraint("job_id", "name"),
)


#: A signal sent to a key no job waited for yet (migration 0017, db/waits.py): kept, at most one per key (the
#: first), until a job waits for that key and takes it, or until `expires_at`, when the sweeper drops it.
signals_table = Table(
    "job_signals",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("payload", JsonDocument(none_as_null=True)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)


#: Every attempt a job made, kept as it ended (migration 0015): written by the database itself, by a trigger on
#: the statements that end an attempt (a completion, a failure, a snooze or slice, the sweeper's abandon, a
#: stale claim taken over), so no settling statement and no entry point can forget it, and no round trip is
#: added. Read by db/attempts.py; deleted with its job.
attempts_table = Table(
    "job_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Uuid, ForeignKey("background_jobs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("error", Text),
    Column("request_id", String(64)),
    Column("trace_id", String(64)),
)


#: Every operator action (retry, cancel, redrive, prune, pause, resume, a job published by hand), from the CLI
#: and the console: when, who, through what, what was asked (ids or a filter, never a payload), and how many
#: jobs it touched (db/audit.py). Rows are never changed; `jobstack audit` and the console's Audit page read
#: them newest first, by the index on `at`.
audit_table = Table(
    "operator_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(255), nullable=False),
    Column("via", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("jobs", Integer, nullable=False),
    Column("selection", String(500), nullable=False),
    Column("outcome", String(500), nullable=False),
    #: A replay's links: the job it replayed and the job it published (each job's page shows the other).
    Column("job_id", Uuid, index=True),
    Column("new_job_id", Uuid, index=True),
)


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
    cancel_requested_at: datetime | None = None
    run_at: datetime | None = None
    ordering_key: str | None = None
    waiting_on: int = 0
    has_dependents: bool = False
    on_failure: str | None = None
    workflow_id: uuid.UUID | None = None
    result: Any = None
    unique_key: str | None = None
    concurrency_key: str | None = None
    priority: str | None = None
    traceparent: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    heartbeat_at: datetime | None = None
    request_id: str | None = None
    trace_id: str | None = None
    wait_key: str | None = None
    wait_result: Any = None
    tenant: str | None = None

    @property
    def attempts_left(self) -> int:
        return max(self.max_attempts - self.attempts, 0)

    @property
    def queue_wait(self) -> timedelta | None:
        """How long its first attempt waited in the queue (db/queue_wait.py's rule); None for a retry."""
        return queue_wait(self.created_at, self.run_at, self.started_at, self.attempts)

    @classmethod
    def from_row(cls, row: Any) -> Job:
        m = row._mapping
        return cls(**{f: m[f] for f in _JOB_FIELDS} | {"status": JobStatus(m["status"])})


_JOB_FIELDS = [c.name for c in jobs_table.columns]
