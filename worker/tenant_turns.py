"""After a batch: the slots its jobs freed release their tenants' parked jobs (db/tenant_turns.py says the rule).

Decided here, sent by the batch with the other released jobs (worker/transport.py: send_released). A tenant is
released once per batch whatever number of its jobs ran, in one short transaction under the tenant's lock; a
job type without a tenant limit, or a job without a tenant, costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from uuid import UUID

from db import DatabaseUnavailable
from worker.observability import LOGGER_NAME
from worker.outcomes import Decision
from worker.runtime import Runnable, Runtime

log = logging.getLogger(LOGGER_NAME)


def freed_turns(runtime: Runtime, decisions: Iterable[Decision]) -> list[UUID]:
    """The parked jobs the batch's finished claims make room for: pending now, for the batch to send. A failure
    is logged, not raised: the sweeper releases what a batch could not."""
    tenants = {(d.job_type, d.tenant) for d in decisions if d.tenant is not None and d.job_type is not None}
    if not tenants:
        return []
    from db.claiming.tenant_gate import TenantGate, release_turns  # only a batch that ran a tenant's job loads it

    released: list[UUID] = []
    done: set[tuple[str, str]] = set()
    for job_type, tenant in sorted(tenants):
        runnable = runtime.runnables.get(job_type)
        for gate in runnable.plan.gates if isinstance(runnable, Runnable) else ():
            if not isinstance(gate, TenantGate) or (gate.limit.name, tenant) in done:
                continue
            done.add((gate.limit.name, tenant))
            try:
                released += release_turns(
                    runtime.db, gate.limit, tenant, stale_after=runtime.config.stale_after,
                    silent_after=runtime.config.silent_after or runtime.config.stale_after,
                )  # fmt: skip
            except DatabaseUnavailable as err:
                log.warning(
                    "tenant's turns not released; the sweeper will", extra={"tenant": tenant, "error": str(err)}
                )
    return released
