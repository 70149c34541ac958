"""How a delivery claims its job: the claim rule, the gates a type composes with it, and the statements.

The gates (concurrency_gate.py, rate_limit_gate.py) are imported by the plans that use them, not here: a
worker whose types have no flow control never loads them."""

from .batch import HeldClaim, claim_many, release_claims
from .gate import GateSql
from .outcome import Claim, ClaimOutcome
from .params import DUE_TOLERANCE, NO_INVOCATION, Invocation
from .plan import ClaimPlan, claim_job, plan_for

__all__ = [
    "DUE_TOLERANCE",
    "NO_INVOCATION",
    "Claim",
    "ClaimOutcome",
    "ClaimPlan",
    "GateSql",
    "HeldClaim",
    "Invocation",
    "claim_job",
    "claim_many",
    "plan_for",
    "release_claims",
]
