"""Concurrency per key as a gate: at most `limit` jobs of a type with the same `concurrency_key` run at once.

A step in the claim's transaction: it first takes a lock on (type, key) (db/locks.py: PostgreSQL's advisory
lock, SQLite's write lock), so two claims of one key count one after the other, across every worker,
then counts the key's running jobs. A claim gone
stale (its invocation died) no longer holds a slot. A job without a key passes; so does a finished job's
duplicate delivery (the claim then says it is finished). BEGIN and five statements (the key, the lock,
the count, the claim, COMMIT): only jobs of such types pay them (bench/flow_control.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import Connection, text

from ..locks import take_lock
from ..models import JobStatus
from ..states import STALE
from .gate import StepGate
from .outcome import Claim, ClaimOutcome
from .params import JOB_ID, SILENT_BEFORE, STALE_BEFORE

_KEY_OF = text("SELECT concurrency_key, status FROM background_jobs WHERE id = :job_id").bindparams(JOB_ID)
_MAY_RUN = (JobStatus.PENDING.value, JobStatus.FAILED.value, JobStatus.PROCESSING.value)
_RUNNING_WITH_KEY = text(
    f"SELECT count(*) FROM background_jobs WHERE type = :job_type AND concurrency_key = :key "
    f"AND status = '{JobStatus.PROCESSING.value}' AND NOT ({STALE.template.format(a='')})"
).bindparams(STALE_BEFORE, SILENT_BEFORE)


@dataclass(frozen=True)
class ConcurrencyGate(StepGate):
    limit: int

    @property
    def name(self) -> str:
        return f"concurrency per key ({self.limit})"

    @property
    def unbatchable(self) -> str | None:
        return "its key's running jobs are counted under a lock held by one claim at a time"

    def before(
        self, conn: Connection, job_id: UUID, job_type: str, now: datetime, clock: Mapping[str, datetime]
    ) -> Claim | None:
        row = conn.execute(_KEY_OF, {"job_id": job_id}).first()
        key = row.concurrency_key if row is not None and row.status in _MAY_RUN else None
        if key is None:
            return None
        take_lock(conn, f"jobstack:{job_type}:{key}")
        params = {"job_type": job_type, "key": key, "stale_before": clock["stale_before"],
                  "silent_before": clock["silent_before"]}  # fmt: skip
        if conn.execute(_RUNNING_WITH_KEY, params).scalar_one() >= self.limit:
            return Claim(ClaimOutcome.THROTTLED, reason="its concurrency key is busy")
        return None
