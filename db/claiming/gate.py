"""What a gate is: a condition a claim passes, beside the claim rule every job passes (db/states.py).

The claim rule itself holds the gates every job has: due time (`run_at`) and dependencies (a job waiting
for others is `waiting`, never claimable until they settle it). A type's own flow control (a limit per
concurrency key, a rate limit; next, a paused queue or a fair share) is a gate, each in a module of its
own, composed with the type once (db/claiming/plan.py). A gate works in one of two ways, per database:

- riding on the claim statement (`GateSql`): a CTE and a condition added to the claim's one statement, so
  the gate costs no round trip; the statement also says whether the gate refused (`refused`).
- as a step before the claim, in the claim's own transaction (`before`): a read, a lock, a count.

A gate that can only be a step cannot ride on a held completion (that statement is the completion's
too), and a gate that cannot be decided for many rows in one statement says why (`unbatchable`): a
batched pool claims such a type's jobs one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from sqlalchemy import Connection

from .outcome import Claim

#: SQL true when the delivery's job may be claimed now: what a riding gate's CTE makes its own work
#: depend on, so a gate spends nothing for a job the claim will not take (a duplicate delivery).
JOB_CLAIMABLE = "job_claimable"


@dataclass(frozen=True)
class GateSql:
    """A gate as a part of the claim statement (PostgreSQL text)."""

    cte: str  # `name AS (...)`, using the claim statement's parameters and `{job_claimable}`
    condition: str  # `AND ...`, appended to the claim's WHERE: the claim runs only if the gate let it
    verdict: str  # `, expr AS col, ...`: the columns the outer SELECT adds for `refused`

    def render(self, job_claimable: str) -> GateSql:
        """The gate's SQL with `{job_claimable}` written out as the statement's own condition."""
        mark = "{" + JOB_CLAIMABLE + "}"
        return GateSql(*(part.replace(mark, job_claimable) for part in (self.cte, self.condition, self.verdict)))


if TYPE_CHECKING:  # a type for the checker: defining a Protocol costs a cold start a millisecond

    class Gate(Protocol):
        @property
        def name(self) -> str:
            """A few words for logs and docs: "rate limit 'stripe'"."""

        @property
        def unbatchable(self) -> str | None:
            """Why a batched claim cannot pass this gate (None: it can)."""

        def riding(self, dialect: str) -> GateSql | None:
            """The gate as part of the claim statement on `dialect`, or None (it is a step, `before`)."""

        def params(self) -> dict[str, Any]:
            """The bind parameters its SQL (riding or step) needs."""

        def before(
            self, conn: Connection, job_id: UUID, job_type: str, now: datetime, clock: Mapping[str, datetime]
        ) -> Claim | None:
            """The gate as a step in the claim's transaction: a refusal, or None to go on to the claim. `clock`:
            the claim rule's (params.clock), for a gate that tells live claims from stale ones."""

        def refused(self, conn: Connection, row: Any, now: datetime) -> Claim | None:
            """After a riding claim took nothing: the gate's refusal if it refused (from `verdict`'s columns)."""


class StepGate:
    """What every gate that is only a step (`before`, in the claim's transaction) answers alike: it never rides
    on the claim statement, binds nothing of its own, and has no riding refusal to read back."""

    def riding(self, dialect: str) -> GateSql | None:
        return None

    def params(self) -> dict[str, Any]:
        return {}

    def refused(self, conn: Connection, row: Any, now: datetime) -> Claim | None:
        return None
