"""Monthly Lambda + SQS cost of a few typical workloads, from prod's settings, via the `jobstack cost` model.

Not a measurement but arithmetic on list prices (cli/commands/cost.py states the model); it lives beside the
benchmarks because the round trips per job it charges are the ones bench.cold_start measures.

    .venv/bin/python -m bench.cost
"""

from __future__ import annotations

from bench.report import write_section
from cli.commands import cost
from cli.target import stack_settings

WORKLOADS = ((1_000_000, 50.0), (10_000_000, 5.0), (10_000_000, 200.0), (100_000_000, 20.0))
DB_RTT_MS = 1.0


def main() -> None:
    settings = stack_settings("prod")
    lines = []
    negative = 0  # rows where the seeds' runbook costs less: said only when this run has one
    for jobs, avg_ms in WORKLOADS:
        ours, ours_at_1, seeds = (
            cost.estimate(d, jobs_per_month=jobs, avg_ms=avg_ms, db_rtt_ms=DB_RTT_MS) for d in cost.designs(settings)
        )
        negative += ours.total_usd > seeds.total_usd
        lines.append(
            f"| {jobs:,} | {avg_ms:g} ms | ${ours.total_usd:,.2f} | ${ours_at_1.total_usd:,.2f} "
            f"| ${seeds.total_usd:,.2f} | **{1 - ours.total_usd / seeds.total_usd:.0%}** |"
        )
    note = f", hence the {negative} negative row{'s' if negative > 1 else ''}" if negative else ""
    body = f"""
Monthly Lambda + SQS cost, JobsStack-prod's settings ({settings.memory_mb} MB, {settings.architecture},
batch size {settings.batch_size}), {DB_RTT_MS:g} ms per database round trip, full batches, us-east-1 list prices, no
free tier. The seeds' runbook row is that runbook's own function: batch size 1, 256 MB, x86_64, three
transactions per job; the handler time is taken as equal at every memory size.

| jobs/month | handler time | JobsStack-prod | same, batch 1 | seeds' runbook | saved vs seeds |
|---|---|---|---|---|---|
{chr(10).join(lines)}

Batching saves Lambda requests and SQS receives and deletes ({1 - 1 / settings.batch_size:.0%} of them at batch size
{settings.batch_size}), which dominate when handlers are short. When handlers are long, duration dominates and
memory decides: prod's {settings.memory_mb} MB against the runbook's 256 MB for a handler that runs as fast at
256 MB (one that waits on I/O){note}; size `memory_mb` to what your handlers need.
Any workload: `jobstack cost --jobs-per-month N --avg-ms M [--env prod]`.
"""
    print(body)
    write_section("cost", "make bench  (or: .venv/bin/python -m bench.cost)", body)


if __name__ == "__main__":
    main()
