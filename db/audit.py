"""The audit trail: who did what to which jobs, from the CLI or the console ("who retried 800 jobs at 03:12?").

An action is recorded after it ran, with what it touched: a row is a fact, not an intention. What was asked
is said in words (`describe_filter`: ids by count, a filter by its fields), never a payload: a payload
search is recorded by its keys alone, and every text is redacted of URL passwords and cut to its column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import insert, select

from .clock import utcnow
from .engine import DB, statements
from .models import audit_table
from .redaction import redact

if TYPE_CHECKING:
    from .admin import JobFilter

_a = audit_table
_TEXT = 500


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str  # an AWS identity's ARN, or `os:NAME` where no AWS session exists
    via: str  # "cli" or "console"
    action: str  # retry, cancel, redrive, prune, pause, resume, publish, replay, signal
    jobs: int  # how many jobs (or dead letters) it touched
    selection: str  # what was asked for: ids, a filter, a kind of dead letter
    outcome: str  # what came of it, in a few words


@dataclass(frozen=True)
class Action:
    """One action that ran, as its command or page says it: the trail adds when and who."""

    via: str  # "cli" or "console"
    action: str  # retry, cancel, redrive, prune, pause, resume, publish, replay, signal
    jobs: int
    selection: str
    outcome: str
    job_id: UUID | None = None  # a replay's old job
    new_job_id: UUID | None = None  # the job a publish or a replay wrote


def record(db: DB, actor: str, done: Action, *, at: datetime | None = None) -> None:
    """One row for one action that ran."""
    values = {
        "at": at or utcnow(),
        "actor": actor[:255],
        "via": done.via,
        "action": done.action,
        "jobs": done.jobs,
        "selection": redact(done.selection)[:_TEXT],
        "outcome": redact(done.outcome)[:_TEXT],
        "job_id": done.job_id,
        "new_job_id": done.new_job_id,
    }
    with statements(db) as conn:
        conn.execute(insert(_a).values(**values))


def recent(db: DB, *, limit: int = 100, action: str | None = None) -> list[AuditEntry]:
    """The newest actions first."""
    query = select(_a).order_by(_a.c.at.desc(), _a.c.id.desc()).limit(limit)
    if action is not None:
        query = query.where(_a.c.action == action)
    with statements(db) as conn:
        return [AuditEntry(r.at, r.actor, r.via, r.action, r.jobs, r.selection, r.outcome) for r in conn.execute(query)]


@dataclass(frozen=True)
class Replays:
    """A job's replays: the jobs published from it, and the job it was published from (if it is a replay)."""

    replayed_as: list[UUID]
    replay_of: UUID | None


def replays(db: DB, job_id: UUID) -> Replays:
    """Read by the two link indexes: what a job page shows of its replays."""
    with statements(db) as conn:
        later = conn.execute(
            select(_a.c.new_job_id).where(_a.c.job_id == job_id, _a.c.action == "replay").order_by(_a.c.at)
        ).scalars()
        earlier = conn.execute(select(_a.c.job_id).where(_a.c.new_job_id == job_id, _a.c.action == "replay")).first()
        return Replays([i for i in later if i is not None], earlier[0] if earlier else None)


def describe_ids(ids: list[str] | tuple[str, ...]) -> str:
    shown = ", ".join(i[:8] for i in ids[:5])
    return f"{len(ids)} job id(s): {shown}{', …' if len(ids) > 5 else ''}"


def describe_filter(which: JobFilter) -> str:
    """A filter in words, for the trail: each field set, a payload search by its keys alone."""
    parts = []
    names = (
        "status",
        "type",
        "tenant",
        "lane",
        "created_from",
        "created_to",
        "idempotency_key",
        "id_prefix",
        "workflow_id",
    )
    for name in names:
        value = getattr(which, name)
        if value is not None:
            parts.append(f"{name}={getattr(value, 'value', value)}")
    if which.only_types is not None:
        parts.append(f"types={','.join(which.only_types)}")
    if which.payload is not None:
        parts.append(f"payload has keys {','.join(_keys(json.loads(which.payload)))}")
    return "filter: " + (" ".join(parts) or "every job")


def _keys(document: dict[str, object], prefix: str = "") -> list[str]:
    keys = []
    for key, value in document.items():
        keys += _keys(value, f"{prefix}{key}.") if isinstance(value, dict) and value else [f"{prefix}{key}"]
    return keys
