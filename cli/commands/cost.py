"""`jobstack cost`: what a month of jobs costs in Lambda and SQS requests, from the stack's own settings.

The figure users argue about in review is batch size, so the estimate sets the stack's setting beside the
same stack at batch size 1 and beside the seeds' runbook as it deploys itself (batch size 1, three
transactions per job, 256 MB on x86_64). The model is deliberately small and every assumption is printed
with it:

- Full batches: a backlog, or a batching window, fills them. At a trickle with no window, invocations carry
  fewer jobs and the saving shrinks towards nothing.
- Billed time per invocation: each job's handler time plus its database round trips, plus 1 ms for the
  invocation itself (Lambda bills whole milliseconds), rounded up. The handler time is taken as equal at
  every memory size; a CPU-bound handler runs slower with less memory (Lambda's CPU share follows it).
- SQS requests: one SendMessage per job (`publish`; `publish_many` sends 10 per request) plus, per
  invocation, the poller's ReceiveMessage and its DeleteMessageBatch. Messages under 64 KB.
- Not included: the free tier, cold starts' init time, idle long polling by Lambda's pollers (a fixed
  amount either way), CloudWatch, data transfer, the database, and with `queue_encryption: kms` the key
  ($1 a month) and its requests (data keys are reused for 5 minutes, so a few thousand a month).

Prices are us-east-1 list prices; other regions differ by a few per cent.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

from cli.errors import OK
from cli.output import emit_json, table
from cli.target import stack_pool
from stacks.settings import Settings

# us-east-1 list prices (USD), first pricing tier.
LAMBDA_PER_GB_SECOND = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
LAMBDA_PER_MILLION_REQUESTS = 0.20
SQS_PER_MILLION_REQUESTS = 0.40
INVOCATION_OVERHEAD_MS = 1.0
SEEDS_ROUND_TRIPS_PER_JOB = 9  # three transactions of BEGIN, statement, COMMIT (bench/reference.py)
#: The seeds' runbook's own function: `aws lambda create-function --memory-size 256` with no architecture
#: (x86_64), `create-event-source-mapping --batch-size 1` (../shared/seeds, "Lambda Configuration").
SEEDS_MEMORY_MB, SEEDS_ARCHITECTURE = 256, "x86_64"


def our_round_trips_per_job(batch_size: int) -> float:
    """A batch of N: the first claim, N-1 statements that complete one job and claim the next, the last
    completion: N + 1 autocommit statements (docs/benchmarks.md), so 2 per job at batch 1, 1.1 at 10."""
    return (batch_size + 1) / batch_size


@dataclass(frozen=True)
class Design:
    """How jobs reach the worker: what differs between the rows of the estimate."""

    name: str
    batch_size: int
    memory_mb: int
    architecture: str
    round_trips_per_job: float


@dataclass(frozen=True)
class Estimate:
    design: Design
    invocations: int
    billed_ms_per_invocation: int
    gb_seconds: float
    lambda_requests_usd: float
    lambda_duration_usd: float
    sqs_requests: int
    sqs_usd: float

    @property
    def total_usd(self) -> float:
        return self.lambda_requests_usd + self.lambda_duration_usd + self.sqs_usd


def designs(settings: Settings, pool: str | None = None) -> list[Design]:
    """The stack as configured (a pool's settings, if given), the stack at batch size 1, and the seeds'
    runbook as it deploys itself."""
    name = f"JobsStack-{settings.env_name}" + (f" pool {pool}" if pool else "")
    ours = Design(
        f"{name} (batch {settings.batch_size})",
        settings.batch_size,
        settings.memory_mb,
        settings.architecture,
        our_round_trips_per_job(settings.batch_size),
    )
    return [
        ours,
        Design(
            f"{name} at batch 1",
            1,
            ours.memory_mb,
            ours.architecture,
            our_round_trips_per_job(1),
        ),
        Design(
            f"seeds' runbook (batch 1, {SEEDS_MEMORY_MB} MB, {SEEDS_ARCHITECTURE})",
            1,
            SEEDS_MEMORY_MB,
            SEEDS_ARCHITECTURE,
            SEEDS_ROUND_TRIPS_PER_JOB,
        ),
    ]


def estimate(design: Design, *, jobs_per_month: int, avg_ms: float, db_rtt_ms: float) -> Estimate:
    invocations = math.ceil(jobs_per_month / design.batch_size)
    per_job_ms = avg_ms + design.round_trips_per_job * db_rtt_ms
    billed_ms = math.ceil(design.batch_size * per_job_ms + INVOCATION_OVERHEAD_MS)
    gb_seconds = invocations * billed_ms / 1000 * design.memory_mb / 1024
    sqs_requests = jobs_per_month + 2 * invocations
    return Estimate(
        design=design,
        invocations=invocations,
        billed_ms_per_invocation=billed_ms,
        gb_seconds=gb_seconds,
        lambda_requests_usd=invocations / 1e6 * LAMBDA_PER_MILLION_REQUESTS,
        lambda_duration_usd=gb_seconds * LAMBDA_PER_GB_SECOND[design.architecture],
        sqs_requests=sqs_requests,
        sqs_usd=sqs_requests / 1e6 * SQS_PER_MILLION_REQUESTS,
    )


def assumptions(jobs_per_month: int, avg_ms: float, db_rtt_ms: float) -> str:
    return (
        f"{jobs_per_month:,} jobs/month, {avg_ms:g} ms handler time each, {db_rtt_ms:g} ms per database round trip; "
        "full batches; the same handler time at every memory size; us-east-1 list prices; no free tier, cold "
        "starts, idle polling, logs, KMS or database"
    )


# -- `jobstack cost` ------------------------------------------------------------------------------------------


def cmd_cost(args: argparse.Namespace) -> int:
    workload = {"jobs_per_month": args.jobs_per_month, "avg_ms": args.avg_ms, "db_rtt_ms": args.db_rtt_ms}
    pool = stack_pool(args.env or "dev", args.pool)  # its batch size and memory
    named = None if pool.is_default else pool.name
    estimates = [estimate(design, **workload) for design in designs(pool.settings, named)]
    if args.json:
        emit_json([{"name": e.design.name, **fields_of(e), "total_usd": e.total_usd} for e in estimates])
        return OK
    base = estimates[0].total_usd
    rows = [
        [
            e.design.name,
            f"{e.invocations:,}",
            f"{e.billed_ms_per_invocation:,} ms",
            f"${e.lambda_requests_usd + e.lambda_duration_usd:,.2f}",
            f"${e.sqs_usd:,.2f}",
            f"${e.total_usd:,.2f}",
            "" if e is estimates[0] else f"{e.total_usd / base:.1f}x" if base else "",
        ]
        for e in estimates
    ]
    table(rows, ["design", "invocations", "billed/invocation", "Lambda", "SQS", "total/month", "vs stack"])
    print(assumptions(**workload))
    return OK


def fields_of(estimate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(estimate).items() if k != "design"}
