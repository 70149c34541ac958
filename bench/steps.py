"""What a durable step costs (`ctx.step`), against a plain job in the same run (real PostgreSQL, the worker's
batch entry, batches of 10, interleaved rounds).

A job of ten no-op steps, and one of ten no-op transactional steps, against a job with none: statements per
job (SQLAlchemy's engine events) and milliseconds per job; a step's cost is the difference over ten. The
journal is read once per run (at the first step) and each step adds its journal row: one INSERT ... SELECT
(autocommit), or, transactional, BEGIN, the INSERT and COMMIT around the step's own writes.

    .venv/bin/python -m bench.steps [--jobs 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections import Counter

from pydantic import BaseModel

from bench.cold_start import _Context, _records, _Sink
from bench.report import write_section
from bench.statements import count_statements
from cli.scratch_database import scratch_database
from db import DB, JobRequest, Queue, create_db, publish_many, register_job_type
from worker.batch import process_batch
from worker.config import WorkerConfig
from worker.registry import JobContext, job
from worker.runtime import Runtime

STEPS = 10
KINDS = {"plain": "bench-plain", "steps": "bench-steps", "transactional steps": "bench-tx-steps"}


class _Empty(BaseModel):
    pass


def _register() -> None:
    for name in KINDS.values():
        register_job_type(name, _Empty, max_attempts=3)

    @job(KINDS["plain"])
    def plain(_ctx: JobContext) -> None:
        return None

    @job(KINDS["steps"])
    def stepped(ctx: JobContext) -> None:
        for n in range(STEPS):
            ctx.step(f"step-{n}", lambda: None)

    @job(KINDS["transactional steps"])
    def transactional(ctx: JobContext) -> None:
        for n in range(STEPS):
            ctx.step(f"step-{n}", lambda _conn: None, transactional=True)


def _run(db: DB, runtime: Runtime, job_type: str, n: int) -> tuple[float, Counter[str]]:
    """Milliseconds per job and the statements of `n` jobs of `job_type`, in batches of 10."""
    jobs = publish_many(db, [JobRequest(job_type, {}) for _ in range(n)], queue=Queue(_Sink(), "sink"))
    records = _records(jobs, job_type)
    with count_statements(db) as counts:
        began = time.perf_counter()
        for start in range(0, n, 10):
            response = process_batch({"Records": records[start : start + 10]}, _Context(), runtime)
            assert response == {"batchItemFailures": []}, response
        elapsed = time.perf_counter() - began
    return elapsed * 1000 / n, counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print the tables only")
    args = parser.parse_args()
    _register()
    logging.getLogger("jobstack.worker").setLevel(logging.WARNING)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - EMF lines go to stdout; keep the report readable
    real_stdout, sys.stdout = sys.stdout, devnull
    ms: dict[str, list[float]] = {kind: [] for kind in KINDS}
    statements: dict[str, Counter[str]] = {}
    try:
        with scratch_database(prefix="jobstack_bench") as url:
            db = create_db(url, pool_size=2)
            config = WorkerConfig(database_url=url, database_secret_arn=None, queue_url="sink", dlq_url="sink-dlq")
            runtime = Runtime(config, db=db, sqs=_Sink())
            for _ in range(args.rounds):  # interleaved, so machine noise weighs on each kind alike
                for kind, job_type in KINDS.items():
                    per_job, counts = _run(db, runtime, job_type, args.jobs)
                    ms[kind].append(per_job)
                    statements[kind] = counts
            db.dispose()
    finally:
        sys.stdout = real_stdout
        devnull.close()
    median = {kind: statistics.median(values) for kind, values in ms.items()}
    statements_per_job = {kind: sum(c for verb, c in counts.items() if verb != "(autocommit)") / args.jobs
               for kind, counts in statements.items()}  # fmt: skip
    rows = []
    for kind in KINDS:
        verbs = ", ".join(f"{verb} {count / args.jobs:g}" for verb, count in sorted(statements[kind].items()))
        per_step = (statements_per_job[kind] - statements_per_job["plain"]) / STEPS
        step_ms = (median[kind] - median["plain"]) / STEPS
        extra = " | " if kind == "plain" else f"{per_step:.2f} | {step_ms:.3f} ms"
        rows.append(f"| {kind} | {verbs} | {median[kind]:.2f} ms | {extra} |")
    body = f"""
A job of {STEPS} no-op steps against a job with none, through the worker's batch entry (batches of 10) on real
PostgreSQL (loopback), {args.jobs} jobs a kind, median of {args.rounds} interleaved rounds. A step's cost is
the difference over {STEPS}.

| job | statements per job | ms per job | statements per step | ms per step |
|---|---|---|---|---|
{chr(10).join(rows)}

A run with steps reads its journal once (at its first step); each step then adds its journal row: one
autocommit INSERT ... SELECT, or, transactional, BEGIN, the INSERT and COMMIT around the step's own writes
(three round trips). A plain job pays nothing: its runner is made only when a handler first calls
`ctx.step` or `ctx.progress`.
"""
    print(body)
    if not args.no_write:
        write_section("steps", ".venv/bin/python -m bench.steps", body)


if __name__ == "__main__":
    main()
