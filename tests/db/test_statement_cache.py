"""Every statement a job runs is built once and cached by SQLAlchemy's compiled cache.

A statement SQLAlchemy cannot cache-key is compiled on every execution: for the complete-and-claim CTE that
cost 3.6 ms per job (2.0 → 5.6 ms per call, measured) when it was a Core statement holding a VALUES
clause. The benchmarks would show it; this names the statement at fault.
"""

from __future__ import annotations

import pytest

from db import lifecycle, relay

pytestmark = pytest.mark.unit

PER_JOB = {
    "claim": lifecycle._CLAIM,
    "claim of a type": lifecycle._CLAIM_OF_TYPE,
    "why a claim missed": lifecycle._MISSED,
    "complete": lifecycle._COMPLETE,
    "complete an attempt": lifecycle._COMPLETE_ATTEMPT,
    "complete and claim": lifecycle._COMPLETE_AND_CLAIM[False, False],
    "complete and claim, settling dependents": lifecycle._COMPLETE_AND_CLAIM[True, False],
    "complete and claim, with a token": lifecycle._COMPLETE_AND_CLAIM[False, True],
    "claim with a token": lifecycle._CLAIM_WITH_TOKEN,
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
