"""The claim statements' bind parameters, typed by the column they compare with: SQLite stores a UUID and a
timestamp as text in the column's own format, so an untyped parameter would compare as the wrong text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam

from ..models import jobs_table

_t = jobs_table
JOB_ID = bindparam("job_id", type_=_t.c.id.type)
DONE_ID = bindparam("done_id", type_=_t.c.id.type)
NOW = bindparam("now", type_=_t.c.updated_at.type)
STALE_BEFORE = bindparam("stale_before", type_=_t.c.started_at.type)
SILENT_BEFORE = bindparam("silent_before", type_=_t.c.heartbeat_at.type)
DUE_BY = bindparam("due_by", type_=_t.c.run_at.type)
JOB_TYPE = bindparam("job_type", type_=_t.c.type.type)
REQUEST_ID = bindparam("request_id", type_=_t.c.request_id.type)
TRACE_ID = bindparam("trace_id", type_=_t.c.trace_id.type)

#: The longest request or trace id kept (Lambda's request id is a 36-character UUID, an X-Ray trace id 35).
INVOCATION_ID_MAX = 64


@dataclass(frozen=True)
class Invocation:
    """Who claims: the invocation's request id and trace id, written by every claim onto the row (and, when
    the attempt ends otherwise than in success, into its history: db/attempts.py). An operator goes from an
    attempt to its invocation's logs (the request id) and trace (the X-Ray trace id) without searching."""

    request_id: str | None = None
    trace_id: str | None = None

    def __post_init__(self) -> None:  # an id longer than the column is cut, never refused: a claim must not fail
        object.__setattr__(self, "request_id", _kept(self.request_id))
        object.__setattr__(self, "trace_id", _kept(self.trace_id))

    def params(self) -> dict[str, str | None]:
        return {"request_id": self.request_id, "trace_id": self.trace_id}


def _kept(value: str | None) -> str | None:
    return value[:INVOCATION_ID_MAX] if value else None


#: A claim made by a tool or a test: no invocation to name.
NO_INVOCATION = Invocation()

#: A pending job is due once its run_at is no later than now plus this: hosts' clocks are NTP-synced, and a
#: message SQS delayed until run_at may arrive a hair before the worker's clock says so.
DUE_TOLERANCE = timedelta(seconds=2)


def clock(now: datetime, *, stale_after: timedelta, silent_after: timedelta) -> dict[str, datetime]:
    """The claim rule's clock (db/states.py): due by now plus the tolerance; stale if started before
    `stale_after` ago without a heartbeat, or silent since its last one for `silent_after` (never longer
    than `stale_after`, the outer bound)."""
    silent = min(silent_after, stale_after)
    return {"due_by": now + DUE_TOLERANCE, "stale_before": now - stale_after, "silent_before": now - silent}
