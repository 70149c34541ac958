"""Unique jobs while they wait to start: one job per (type, unique_key) among the pending and scheduled.

`publish(..., unique_key="refresh:user:42")`: a second publish while that job has not started returns it
(no second row, no second message); once it has started (claimed), the key is free and a new one may be
published. `on_conflict="replace"` updates the waiting job's payload and run_at instead: a debounce ("rebuild
the index 30 s after the last edit": each publish pushes the run back). Idempotency keys differ: they name
one job forever, whatever became of it, and a different payload under the same key is an error.

The database arbitrates: migration 0009's partial unique index holds only jobs not started, and the INSERT
skips a conflicting row (ON CONFLICT DO NOTHING, which waits for a concurrent insert of the same key to
commit), so fifty concurrent publishes make one job. A waiting job that starts between the skipped INSERT
and the lookup frees its key: the INSERT is tried again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from .clock import utcnow
from .models import Job, JobStatus, jobs_table
from .preparation import Prepared

_t = jobs_table
#: The statuses a unique key holds: a job that has not started.
WAITING_TO_START = (JobStatus.PENDING.value, JobStatus.SCHEDULED.value)
_TRIES = 3


def waiting_job(conn: Connection, prepared: Prepared, *, now: datetime | None = None) -> Job | None:
    """The job not started yet with the request's type and unique key (None: there is none now). With
    on_conflict="replace" it takes the request's payload and run_at (a scheduled one now due within SQS's
    delay is the publisher's to release: `publish` does, as the sweeper would, but at once)."""
    row = prepared.row
    same = (
        _t.c.type == row["type"],
        _t.c.unique_key == row["unique_key"],
        _t.c.status.in_(WAITING_TO_START),
    )
    if prepared.on_conflict != "replace":
        found = conn.execute(select(_t).where(*same)).first()
        return Job.from_row(found) if found else None
    replaced = conn.execute(
        update(_t)
        .where(*same)
        .values(payload=row["payload"], run_at=row["run_at"], updated_at=now or utcnow())
        .returning(*_t.c)
    ).first()
    return Job.from_row(replaced) if replaced else None


def insert_or_wait(conn: Connection, prepared: Prepared, insert: object) -> tuple[Job, bool]:
    """The request's own new job (True), or the waiting job its unique key names (False): the INSERT is
    tried again if that job started meanwhile, freeing the key."""
    if prepared.row["unique_key"] is None:  # only a key's index can have skipped it: anything else is a bug
        raise RuntimeError(f"the INSERT skipped job {prepared.row['id']} though it has no unique key")
    for _ in range(_TRIES):
        found = waiting_job(conn, prepared)
        if found is not None:
            return found, False
        if conn.execute(insert, prepared.row).scalars().all():  # type: ignore[call-overload]
            return prepared.job(), True
    raise RuntimeError(
        f"unique key {prepared.row['unique_key']!r} of {prepared.row['type']!r} kept changing hands "
        f"{_TRIES} times: publish again"
    )
