"""Every statement a job runs is built once and cached by SQLAlchemy's compiled cache.

A statement SQLAlchemy cannot cache-key is compiled on every execution: for the complete-and-claim CTE that
cost 3.6 ms per job (2.0 → 5.6 ms per call, measured) when it was a Core statement holding a VALUES
clause. The benchmarks would show it; this names the statement at fault.
"""

from __future__ import annotations

import pytest

from db import lifecycle, relay
from db.claiming import statements
from db.claiming.rate_limit_gate import RateLimitGate
from db.rate_limits import Limiter

pytestmark = pytest.mark.unit

_TOKEN = RateLimitGate(Limiter("api", 1.0, 1)).riding("postgresql")
assert _TOKEN is not None
PER_JOB = {
    "claim": statements.CLAIM,
    "claim of a type": statements.CLAIM_OF_TYPE,
    "why a claim missed": statements.MISSED,
    "complete": lifecycle._COMPLETE,
    "complete an attempt": lifecycle._COMPLETE_ATTEMPT,
    "complete and claim": statements.complete_and_claim(False),
    "complete and claim, settling dependents": statements.complete_and_claim(True),
    "complete and claim, with a token": statements.complete_and_claim(False, (_TOKEN,)),
    "claim with a token": statements.claim_with((_TOKEN,)),
    "complete one": lifecycle._COMPLETE_ONE[False],
    "complete one, settling dependents": lifecycle._COMPLETE_ONE[True],
    "complete many": lifecycle._COMPLETE_MANY[False],
    "complete many, settling dependents": lifecycle._COMPLETE_MANY[True],
    "mark one sent": relay._MARK_ONE_SENT,
    "mark sent": relay._MARK_SENT,
}


@pytest.mark.parametrize("name", sorted(PER_JOB))
def test_the_statement_has_a_cache_key(name: str) -> None:
    assert PER_JOB[name]._generate_cache_key() is not None, f"{name} is compiled on every execution"
