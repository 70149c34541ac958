"""A job type's claim: the claim rule, and the gates composed with the type once (at a worker's start-up).

Every way a delivery claims its job is a method of one plan: `claim` (alone), `complete_and_claim` (riding
with the previous job's completion, PostgreSQL) and, for a batched pool, `batches` says whether the type's
jobs may be claimed many at a time (db/claiming/batch.py). Which statement runs follows from the gates and
the database, here, and nowhere in the worker:

- no gate: the claim is one UPDATE;
- gates that ride (a rate limit on PostgreSQL): one statement, the gates' CTEs beside the claim;
- a gate that is a step (a concurrency key; a rate limit on SQLite): one transaction, the steps and then
  the claim; such a plan does not ride on a held completion (`rides_with_completion`).

A claim that misses reads the row once, with the claim rule's verdict computed by the database, to say why
(`_why_not`). Times come from the caller's clock (`now`, default: this machine's UTC time) rather than the
server's, so the same SQL runs on PostgreSQL and SQLite and tests can travel in time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import Connection

from ..clock import utcnow
from ..engine import DB, dialect_of, statements
from ..lifecycle import Finished, finished_from_row, in_one_statement
from ..models import Job, JobStatus
from ..rate_limits import Limiter
from . import statements as sql
from .gate import GateSql
from .outcome import Claim, ClaimOutcome
from .params import NO_INVOCATION, Invocation, clock

if TYPE_CHECKING:  # the protocol is a type; a gate's module loads only for a type composed with it
    from .gate import Gate
    from .tenant_gate import TenantLimit


@dataclass(frozen=True)
class ClaimPlan:
    """How deliveries of one job type claim their jobs. `job_type` None (only `claim_job`, for tools and
    tests): any type, with no gate."""

    job_type: str | None
    stale_after: timedelta
    gates: tuple[Gate, ...] = ()
    #: A claim heard of (its heartbeat) less recently than this is stale (None: `stale_after`, as a claim
    #: with no heartbeat).
    silent_after: timedelta | None = None
    #: The limits per tenant of its tenant gate (None: it has none): what a finished job's slot releases
    #: (db/tenant_turns.py).
    tenant_limit: TenantLimit | None = None
    #: Per database: the gates riding on the claim statement, and the ones that are steps before it. Split
    #: once, at a plan's first claim on that database, not on every claim.
    _split: dict[str, tuple[tuple[GateSql, ...], tuple[Gate, ...]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        assert self.job_type is not None or not self.gates, "a gated claim names its type"

    def _clock(self, now: datetime) -> dict[str, datetime]:
        return clock(now, stale_after=self.stale_after, silent_after=self.silent_after or self.stale_after)

    @property
    def unbatchable(self) -> str | None:
        """Why this type's jobs are claimed one by one in a batched pool (None: they batch)."""
        reasons = [f"{gate.name}: {gate.unbatchable}" for gate in self.gates if gate.unbatchable]
        return "; ".join(reasons) or None

    def rides_with_completion(self, db: DB | Connection) -> bool:
        """Whether a held completion can ride on this claim's statement: the database has data-modifying CTEs
        (`in_one_statement`) and every gate rides in the statement too."""
        return in_one_statement(db) and len(self._gates_riding(dialect_of(db))) == len(self.gates)

    def claim(
        self, db: DB | Connection, job_id: UUID, *, now: datetime | None = None, invocation: Invocation = NO_INVOCATION
    ) -> Claim:
        """Take the job for this invocation if the claim rule and every gate allow it.

        A `processing` row stale by the claim rule (db/states.py: STALE, silent past `silent_after` since its
        last heartbeat, or started before `stale_after` without one) belongs to an invocation that died
        (timeout, crash); it is reclaimed and the attempt counts. A failed or abandoned job with no attempts
        left is not claimed (EXHAUSTED): `requeue_job` gives it new attempts when an operator retries it. A
        row of another type is never claimed (TYPE_MISMATCH). The claim names `invocation` on the row."""
        now = now or utcnow()
        if isinstance(db, DB) and self._steps(db.dialect):  # (a connection given: the caller's transaction)
            with db.begin() as conn:  # the steps and the claim in one transaction
                return self._claim(conn, job_id, now, invocation)
        with statements(db) as conn:
            return self._claim(conn, job_id, now, invocation)

    def _claim(self, conn: Connection, job_id: UUID, now: datetime, invocation: Invocation) -> Claim:
        params = self._params(job_id, now, invocation)
        for gate in self._steps(conn.dialect.name):
            assert self.job_type is not None
            refusal = gate.before(conn, job_id, self.job_type, now, params)
            if refusal is not None:
                return refusal
        riding = self._gates_riding(conn.dialect.name)
        if riding:
            row = conn.execute(sql.claim_with(riding), params).one()
            if row.id is not None:
                return Claim(ClaimOutcome.CLAIMED, sql.claimed_job(row, now, invocation))
            return self._why_not(conn, job_id, now, row)
        statement = sql.CLAIM if self.job_type is None else sql.CLAIM_OF_TYPE
        taken = conn.execute(statement, params).first()
        if taken is not None:
            return Claim(ClaimOutcome.CLAIMED, sql.claimed_job(taken, now, invocation))
        return self._why_not(conn, job_id, now)

    def complete_and_claim(
        self,
        db: DB | Connection,
        done: tuple[UUID, int],
        job_id: UUID,
        *,
        result: str | None = None,
        dependents: bool = False,
        now: datetime | None = None,
        invocation: Invocation = NO_INVOCATION,
    ) -> tuple[Finished, Claim]:
        """Complete `done` (job id, attempt: the same fence as `finish_job`'s) and claim `job_id` in one round
        trip and one commit (PostgreSQL, a plan that `rides_with_completion`).

        `result` is its handler's result as JSON text (`db.lifecycle.encode_result`); `dependents`:
        whether the job had dependents when claimed (`Job.has_dependents`): True settles them in this
        statement; False (always correct) is the lean statement, which reads the mark back and settles any
        in one more. `done` and `job_id` must differ (one statement may not change a row twice)."""
        assert done[0] != job_id, "complete and claim the same job in two statements"
        assert self.job_type is not None, "a claim that rides on a completion names its type"
        assert self.rides_with_completion(db), "a step gate claims in its own transaction"
        now = now or utcnow()
        params = self._params(job_id, now, invocation)
        params |= {"done_id": done[0], "done_attempt": done[1], "done_result": result}
        statement = sql.complete_and_claim(dependents, self._gates_riding(dialect_of(db)))
        with statements(db) as conn:
            row = conn.execute(statement, params).one()
            claim = Claim(ClaimOutcome.CLAIMED, sql.claimed_job(row, now, invocation)) if row.id is not None else None
            claim = claim or self._why_not(conn, job_id, now, row)
        # After the connection is back: any settling is its own transaction, on a connection of its own.
        return finished_from_row(db, row, dependents, now), claim

    def _params(self, job_id: UUID, now: datetime, invocation: Invocation) -> dict[str, Any]:
        params: dict[str, Any] = {"job_id": job_id, "job_type": self.job_type, "now": now}
        params |= self._clock(now) | invocation.params()
        for gate in self.gates:
            params |= gate.params()
        return params

    def _gates_riding(self, dialect: str) -> tuple[GateSql, ...]:
        return self._split_for(dialect)[0]

    def _steps(self, dialect: str) -> tuple[Gate, ...]:
        return self._split_for(dialect)[1]

    def _split_for(self, dialect: str) -> tuple[tuple[GateSql, ...], tuple[Gate, ...]]:
        split = self._split.get(dialect)
        if split is None:
            riding = [(gate, gate.riding(dialect)) for gate in self.gates]
            split = self._split[dialect] = (
                tuple(riding_sql for _, riding_sql in riding if riding_sql is not None),
                tuple(gate for gate, riding_sql in riding if riding_sql is None),
            )
        return split

    def _why_not(self, conn: Connection, job_id: UUID, now: datetime, row: Any = None) -> Claim:
        """The claim took nothing: a riding gate's refusal, else the row read once with the claim rule's
        verdict."""
        if row is not None:
            for gate in self.gates:
                refusal = gate.refused(conn, row, now)
                if refusal is not None:
                    return refusal
        params = {"job_id": job_id} | self._clock(now)
        current = conn.execute(sql.MISSED, params).first()
        if current is None:
            return Claim(ClaimOutcome.NOT_FOUND)
        job = Job.from_row(current)
        if self.job_type is not None and job.type != self.job_type:
            return Claim(ClaimOutcome.TYPE_MISMATCH, job)
        if job.status is JobStatus.COMPLETED:
            return Claim(ClaimOutcome.COMPLETED, job)
        if job.status is JobStatus.CANCELLED:
            return Claim(ClaimOutcome.CANCELLED, job)
        if current.exhausted:
            return Claim(ClaimOutcome.EXHAUSTED, job)
        if current.not_due:
            return Claim(ClaimOutcome.NOT_DUE, job)
        return Claim(ClaimOutcome.BUSY, job)


def plan_for(
    job_type: str,
    *,
    stale_after: timedelta,
    silent_after: timedelta | None = None,
    concurrency_per_key: int | None = None,
    limiter: Limiter | None = None,
    tenant_limit: TenantLimit | None = None,
) -> ClaimPlan:
    """The plan of a job type with its flow control. Steps run before the claim statement and riding gates
    in it, so on PostgreSQL a job its key or its tenant turns away spends no token; on SQLite (all steps) the
    token comes first, as the gates are listed, and a job the rate limit turns away never takes the key's
    count. The tenant's gate comes last: a job its key turns away spends none of its tenant's tokens."""
    gates: list[Gate] = []
    if limiter is not None:
        from .rate_limit_gate import RateLimitGate  # a plain type's worker never loads it

        gates.append(RateLimitGate(limiter))
    if concurrency_per_key is not None:
        from .concurrency_gate import ConcurrencyGate

        gates.append(ConcurrencyGate(concurrency_per_key))
    if tenant_limit is not None:
        from .tenant_gate import TenantGate

        gates.append(TenantGate(tenant_limit))
    return ClaimPlan(job_type, stale_after, tuple(gates), silent_after, tenant_limit)


def claim_job(
    db: DB | Connection,
    job_id: UUID,
    *,
    stale_after: timedelta,
    job_type: str | None = None,
    now: datetime | None = None,
    invocation: Invocation = NO_INVOCATION,
) -> Claim:
    """A claim with no gate (tools, tests, a type without flow control): `ClaimPlan.claim`."""
    return ClaimPlan(job_type, stale_after).claim(db, job_id, now=now, invocation=invocation)
