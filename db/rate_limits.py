"""Rate limits shared by every worker: one token bucket per named limiter, a row in `rate_limiters`.

A job of a limited type takes a token as it is claimed: one conditional statement refills the bucket for
the time since its last change (at `per_second`, up to `burst`) and takes a token if one is there. On
PostgreSQL that statement rides on the claim (`token_cte`, used by db/claiming/rate_limit_gate.py), and
takes a token only for a job the claim may take: a duplicate delivery spends none. Elsewhere (SQLite) it
runs just before, in the claim's transaction. The row lock makes concurrent takers count one after the
other, so no window of a second holds more than `burst` + `per_second` starts, however many workers run.
No token: the job is not claimed and spends no attempt; the caller returns its message until a token is
due (`TokenVerdict.wait_seconds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, text

from .clock import utcnow
from .engine import DB, statements
from .models import rate_limiters_table

_now = bindparam("now", type_=rate_limiters_table.c.updated_at.type)


def _elapsed(dialect: str, row: str) -> str:
    """Seconds since the row last changed, never negative (a worker's clock a hair behind another's)."""
    if dialect == "postgresql":
        return f"GREATEST(EXTRACT(EPOCH FROM (CAST(:now AS timestamptz) - {row}.updated_at)), 0)"
    return f"MAX((julianday(:now) - julianday({row}.updated_at)) * 86400.0, 0)"


def _level(dialect: str) -> str:
    """The bucket's level now: its tokens refilled for the time since its last change, at most `burst`. The
    existing row by its table's name: in ON CONFLICT DO UPDATE a bare column is ambiguous."""
    least = "LEAST" if dialect == "postgresql" else "MIN"
    return f"{least}(CAST(:burst AS float), rate_limiters.tokens + {_elapsed(dialect, 'rate_limiters')} * :rate)"


@dataclass(frozen=True)
class Limiter:
    """A named limiter's bucket as a claim takes from it (worker/contract.py's RateLimit, by name)."""

    name: str
    per_second: float
    burst: int

    def params(self) -> dict[str, object]:
        return {"limiter": self.name, "rate": self.per_second, "burst": self.burst}


def token_cte(condition: str) -> str:
    """PostgreSQL: the CTE `token` that takes a token of limiter `:limiter` when `condition` holds (the job
    is claimable), returning a row if it took one. The same rule as `take_token`'s statement."""
    level = _level("postgresql")
    return f"""token AS (
        INSERT INTO rate_limiters (name, tokens, updated_at)
        SELECT :limiter, CAST(:burst AS float) - 1, :now WHERE {condition}
        ON CONFLICT (name) DO UPDATE SET tokens = {level} - 1, updated_at = GREATEST(rate_limiters.updated_at, :now)
        WHERE {level} >= 1
        RETURNING tokens
    )"""


def _statements(dialect: str) -> tuple[object, object]:
    greatest = "GREATEST" if dialect == "postgresql" else "MAX"
    level = _level(dialect)
    # The row's clock only moves forward: a taker whose `now` is a hair older than the last change (computed
    # before another's, arriving after) must not move it back, or the next taker would refill that interval
    # twice (seen: 23 starts in a second at 10/s, burst 10).
    take = text(
        f"""
        INSERT INTO rate_limiters (name, tokens, updated_at) VALUES (:name, CAST(:burst AS float) - 1, :now)
        ON CONFLICT (name) DO UPDATE SET tokens = {level} - 1, updated_at = {greatest}(rate_limiters.updated_at, :now)
        WHERE {level} >= 1
        RETURNING tokens
        """
    ).bindparams(_now)
    peek = text(f"SELECT {level} FROM rate_limiters WHERE name = :name").bindparams(_now)
    return take, peek


_BY_DIALECT = {dialect: _statements(dialect) for dialect in ("postgresql", "sqlite")}


@dataclass(frozen=True)
class TokenVerdict:
    taken: bool
    wait_seconds: float = 0.0  # when not taken: until the next token is due (at this level of demand)


def take_token(
    db: DB | Connection, name: str, *, per_second: float, burst: int, now: datetime | None = None
) -> TokenVerdict:
    """Take a token of limiter `name` if one is there (one statement; a second, to say how long until the
    next, only when none is)."""
    now = now or utcnow()
    params = {"name": name, "rate": per_second, "burst": burst, "now": now}
    with statements(db) as conn:
        take, _ = _BY_DIALECT[conn.dialect.name]
        if conn.execute(take, params).first() is not None:  # type: ignore[call-overload]
            return TokenVerdict(True)
        return TokenVerdict(False, seconds_to_token(conn, Limiter(name, per_second, burst), now))


def seconds_to_token(conn: Connection, limiter: Limiter, now: datetime) -> float:
    """How long until limiter's next token (after a claim found none): one read."""
    _, peek = _BY_DIALECT[conn.dialect.name]
    params = {"name": limiter.name, "rate": limiter.per_second, "burst": limiter.burst, "now": now}
    level = conn.execute(peek, params).scalar() or 0.0  # type: ignore[call-overload]
    return max((1 - float(level)) / limiter.per_second, 0.0)
