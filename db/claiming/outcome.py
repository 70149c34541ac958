"""What a claim answers: the job is this invocation's to run, or why not (and, if it waits, for how long)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..models import Job


class ClaimOutcome(enum.StrEnum):
    CLAIMED = "claimed"  # this caller now owns the job: run it
    COMPLETED = "completed"  # a duplicate delivery of finished work: acknowledge, do not run
    BUSY = "busy"  # another live invocation holds it: retry later
    EXHAUSTED = "exhausted"  # failed (or died) on its last attempt: dead-letter it, do not run it again
    TYPE_MISMATCH = "type_mismatch"  # the message names another type than the row: the message is wrong
    NOT_FOUND = "not_found"  # no row (yet): the publisher's commit may not be visible; retry later
    CANCELLED = "cancelled"  # an operator cancelled it: acknowledge, do not run
    NOT_DUE = "not_due"  # pending with a run_at still ahead (a debounce moved it): return it until then
    THROTTLED = "throttled"  # its concurrency key has as many jobs running as allowed: return it, unclaimed
    RATE_LIMITED = "rate_limited"  # its limiter had no token: return it, unclaimed, until one is due
    PARKED = "parked"  # its tenant had every slot taken: it waits in the database for its turn; acknowledge it


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    job: Job | None = None  # the row: as claimed, or as found when not claimed (None if NOT_FOUND)
    wait_seconds: float = 0.0  # a gate's refusal (RATE_LIMITED): until it may let the job through
    jitter_seconds: float = 0.0  # ... and the window over which to spread the jobs it turned away
    reason: str = ""  # a gate's refusal: which gate, in a few words, for the record's log line
