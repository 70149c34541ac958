"""How a delivery claims its job: the claim rule, the gates a type composes with it, and the statements."""

from .batch import HeldClaim, claim_many, release_claims
from .concurrency_gate import ConcurrencyGate
from .gate import Gate, GateSql
from .outcome import Claim, ClaimOutcome
from .params import DUE_TOLERANCE
from .plan import ClaimPlan, claim_job, plan_for
from .rate_limit_gate import RateLimitGate

__all__ = [
    "DUE_TOLERANCE",
    "Claim",
    "ClaimOutcome",
    "ClaimPlan",
    "ConcurrencyGate",
    "Gate",
    "GateSql",
    "HeldClaim",
    "RateLimitGate",
    "claim_job",
    "claim_many",
    "plan_for",
    "release_claims",
]
