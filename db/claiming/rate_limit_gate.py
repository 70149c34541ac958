"""The rate limit as a gate: each start of a limited type takes a token of its named limiter (db/rate_limits.py).

On PostgreSQL the token rides on the claim: a `token` CTE takes one only if the job is claimable in the
statement's snapshot, and the claim runs only if it took one; the statement's row says which happened. No
token for a claimable job is RATE_LIMITED (one more read, for the wait, only then); no token for a job
that is not claimable is the claim's usual miss. A claim that still misses after taking a token (the row
changed under it: BUSY) spends that token: the limit errs on the side of fewer starts, never more. On
SQLite the token is a step before the claim, in its transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from ..rate_limits import Limiter, seconds_to_token, take_token, token_cte
from .gate import JOB_CLAIMABLE, GateSql
from .outcome import Claim, ClaimOutcome

_RIDING = GateSql(
    cte=token_cte("{" + JOB_CLAIMABLE + "}"),
    condition=" AND EXISTS (SELECT 1 FROM token)",
    verdict=", (SELECT count(*) FROM token) AS took, {" + JOB_CLAIMABLE + "} AS claimable",
)


@dataclass(frozen=True)
class RateLimitGate:
    limiter: Limiter

    @property
    def name(self) -> str:
        return f"rate limit {self.limiter.name!r}"

    @property
    def unbatchable(self) -> str | None:
        return "each start takes a token of its limiter as it is claimed, one job at a time"

    def riding(self, dialect: str) -> GateSql | None:
        return _RIDING if dialect == "postgresql" else None

    def params(self) -> dict[str, Any]:
        return self.limiter.params()

    def before(
        self, conn: Connection, job_id: UUID, job_type: str, now: datetime, clock: Mapping[str, datetime]
    ) -> Claim | None:
        limiter = self.limiter
        verdict = take_token(conn, limiter.name, per_second=limiter.per_second, burst=limiter.burst, now=now)
        return None if verdict.taken else self._no_token(verdict.wait_seconds)

    def refused(self, conn: Connection, row: Any, now: datetime) -> Claim | None:
        if row.took or not row.claimable:
            return None
        return self._no_token(seconds_to_token(conn, self.limiter, now))

    def _no_token(self, wait_seconds: float) -> Claim:
        """RATE_LIMITED until the next token, to be spread over the next burst's worth of time (`jitter_seconds`)
        so that the jobs it turns away do not all come back at the same instant."""
        return Claim(
            ClaimOutcome.RATE_LIMITED,
            wait_seconds=wait_seconds,
            jitter_seconds=self.limiter.burst / self.limiter.per_second,
            reason=f"{self.name}: no token",
        )
