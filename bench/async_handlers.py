"""`async def` handlers in one invocation: a batch of 100 jobs that each await 100 ms (an HTTP API, an LLM),
run together on the invocation's event loop (worker/processing.py: runs_together), against the same batch
run one after another (a sync handler that sleeps 100 ms), through `process_batch` on real PostgreSQL, in
both completion modes, interleaved.

    .venv/bin/python -m bench.async_handlers [--jobs 100] [--wait-ms 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time

from pydantic import BaseModel

from bench.cold_start import _Context, _records, _Sink
from bench.report import write_section
from cli.scratch_database import scratch_database
from db import JobRequest, JobStatus, Queue, create_db, get_job, publish_many, register_job_type
from worker.batch import process_batch
from worker.config import WorkerConfig
from worker.contract import BATCHED, PER_JOB
from worker.registry import JobContext, job
from worker.runtime import Runtime


class _Empty(BaseModel):
    pass


#: Each way a batch runs, and the job type that makes it so.
KINDS = (("together (async def)", "bench-awaits"), ("one after another", "bench-sleeps"))


def _batch_seconds(url: str, job_type: str, jobs: int, completion: str) -> float:
    """One invocation of `jobs` records of `job_type`: its wall time (every job checked completed)."""
    db = create_db(url)
    config = WorkerConfig(
        database_url=url, database_secret_arn=None, queue_url="http://q", dlq_url="http://d", completion=completion
    )
    runtime = Runtime(config, db=db, sqs=None)
    published = publish_many(db, [JobRequest(job_type, {}) for _ in range(jobs)], queue=Queue(_Sink(), "sink"))
    event = {"Records": _records(published, job_type)}
    started = time.perf_counter()
    response = process_batch(event, _Context(), runtime)
    took = time.perf_counter() - started
    assert not response["batchItemFailures"], response
    assert all((get_job(db, j.id) or j).status is JobStatus.COMPLETED for j in published)
    db.dispose()
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--wait-ms", type=float, default=100.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    wait = args.wait_ms / 1000
    register_job_type("bench-awaits", _Empty)
    register_job_type("bench-sleeps", _Empty)

    @job("bench-awaits")
    async def awaits(_ctx: JobContext) -> None:
        await asyncio.sleep(wait)

    @job("bench-sleeps")
    def sleeps(_ctx: JobContext) -> None:
        time.sleep(wait)

    logging.getLogger("jobstack.worker").setLevel(logging.WARNING)  # time the work, not the log lines
    results: dict[tuple[str, str], list[float]] = {}
    devnull = open(os.devnull, "w")  # noqa: SIM115 - EMF lines go to stdout; keep the report readable
    real_stdout, sys.stdout = sys.stdout, devnull
    try:
        with scratch_database(prefix="jobstack_bench") as url:
            for _ in range(args.rounds):  # interleaved, so a machine growing busier weighs on both alike
                for completion in (PER_JOB, BATCHED):
                    for name, job_type in (
                        ("together (async def)", "bench-awaits"),
                        ("one after another", "bench-sleeps"),
                    ):
                        took = _batch_seconds(url, job_type, args.jobs, completion)
                        results.setdefault((completion, name), []).append(took)
    finally:
        sys.stdout = real_stdout
        devnull.close()
    lines = [
        f"One invocation of {args.jobs} records, each job's handler waiting {args.wait_ms:g} ms, through "
        f"`process_batch` on real PostgreSQL; median of {args.rounds} interleaved rounds:",
        "",
        "| completion | handlers | batch took | jobs/s |",
        "|---|---|---|---|",
    ]
    for (completion, name), times in results.items():
        took = statistics.median(times)
        lines.append(f"| {completion} | {name} | {took:.2f} s | {args.jobs / took:,.0f} |")
    speedups = []
    for completion in (PER_JOB, BATCHED):
        alone = statistics.median(results[(completion, "one after another")])
        together = statistics.median(results[(completion, "together (async def)")])
        speedups.append(f"{completion}: {alone / together:.1f}x")
    floor = args.wait_ms / 1000
    lines += [
        "",
        f"Together against one after another: {', '.join(speedups)}. The floor is one wait ({floor:.2f} s); the "
        "rest is the worker's own sync steps (each claim and completion, one at a time between the awaits).",
    ]
    print("\n".join(lines))
    if not args.no_write:
        command = (
            f".venv/bin/python -m bench.async_handlers --jobs {args.jobs} --wait-ms {args.wait_ms:g} "
            f"--rounds {args.rounds}"
        )
        write_section("async handlers", command, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
