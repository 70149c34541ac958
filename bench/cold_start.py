"""Worker cold start and per-job cost.

1. Import time of `worker.handler` in a fresh interpreter with bytecode caching off (Lambda's /var/task is
   read-only, so nothing is cached between cold starts), against `import sqlalchemy.orm, psycopg` alone,
   interleaved in the same run. Target: at most 1.25x that floor.
2. Database statements per successful job (target 2: claim, complete) and jobs/s for batches of 1 and 10
   no-op jobs through `process_batch` against real PostgreSQL.

    .venv/bin/python -m bench.cold_start [--runs 15] [--jobs 2000]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bench.report import write_section
from bench.statements import count_statements, per
from db import JobRequest, Queue, create_db, publish_many, register_job_type
from db.scratch import scratch_database
from worker.config import WorkerConfig
from worker.processing import process_batch
from worker.registry import JobContext, job
from worker.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
TIMED_IMPORT = "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"


def import_seconds(module: str) -> float:
    with tempfile.TemporaryDirectory() as empty_cache:
        env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": empty_cache}
        out = subprocess.run(
            [sys.executable, "-c", TIMED_IMPORT.format(mod=module)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    return float(out.stdout.strip())


class Noop(BaseModel):
    n: int = 0


class _Sink:
    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]], "Failed": []}


class _Context:
    def get_remaining_time_in_millis(self) -> int:
        return 600_000


def _records(jobs: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "r",
            "body": f'{{"jobId":"{j.id}","type":"bench-noop","payload":{{}}}}',
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
        }
        for j in jobs
    ]


def jobs_per_second(url: str, n: int, batch: int) -> tuple[float, Any]:
    db = create_db(url)
    config = WorkerConfig(database_url=url, database_secret_arn=None, queue_url="http://q", dlq_url="http://d")
    runtime = Runtime(config, db=db, sqs=None)
    jobs = publish_many(db, [JobRequest("bench-noop", {}) for _ in range(n)], queue=Queue(_Sink(), "sink"))
    records = _records(jobs)
    with count_statements(db) as counts:
        start = time.perf_counter()
        for i in range(0, n, batch):
            response = process_batch({"Records": records[i : i + batch]}, _Context(), runtime)
            assert not response["batchItemFailures"], response
        elapsed = time.perf_counter() - start
    db.dispose()
    return n / elapsed, counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()

    floor, ours = [], []
    for _ in range(args.runs):  # interleaved, so machine noise hits both alike
        floor.append(import_seconds("sqlalchemy.orm, psycopg"))
        ours.append(import_seconds("worker.handler"))
    floor_s, ours_s = statistics.median(floor), statistics.median(ours)

    register_job_type("bench-noop", Noop)

    @job("bench-noop")
    def noop(_ctx: JobContext) -> None:
        return None

    logging.getLogger("jobstack.worker").setLevel(logging.WARNING)  # time the work, not the log lines
    devnull = open(os.devnull, "w")  # noqa: SIM115 - EMF lines go to stdout; keep the report readable
    real_stdout, sys.stdout = sys.stdout, devnull
    try:
        with scratch_database(prefix="jobstack_bench") as url:
            rate_1, _ = jobs_per_second(url, args.jobs // 4, 1)
            rate_10, counts_10 = jobs_per_second(url, args.jobs, 10)
    finally:
        sys.stdout = real_stdout
        devnull.close()

    body = f"""
| figure | result | target |
|---|---|---|
| `import sqlalchemy.orm, psycopg` (the floor) | {floor_s * 1000:.0f} ms | |
| `import worker.handler` | {ours_s * 1000:.0f} ms | |
| ratio | **{ours_s / floor_s:.2f}x** (median of {args.runs} fresh interpreters, no bytecode cache) | ≤ 1.25x |
| statements per successful job | {per(counts_10, args.jobs)} | 2 (claim, complete) |
| no-op jobs/s, batch of 1 | {rate_1:,.0f} | |
| no-op jobs/s, batch of 10 | {rate_10:,.0f} | |

Jobs/s is one invocation's sequential throughput through `process_batch` against PostgreSQL on loopback;
with a pooler over the network each job pays two round trips, so expect it to fall with latency.
"""
    print(body)
    write_section("worker", "make bench  (or: .venv/bin/python -m bench.cold_start)", body)


if __name__ == "__main__":
    main()
