"""Publisher cost against real PostgreSQL, with moto SQS and with a latency-modelled SQS sink.

Prints and records: statements per publish (target: the INSERT before the send, and one UPDATE recording
`sent_at` after it, each in autocommit), statements per claim + complete cycle (target 2), and
publish_many(N) vs N x publish wall time measured in the same run.

Why two SQS stand-ins: moto recomputes queue attributes over every stored message on each send, so its
cost grows with queue depth and swamps what we measure at N=1000. The sink accepts messages in O(1) and
sleeps a fixed round-trip time per API call, like SQS in the same region; with 0 ms it isolates our own
cost (database + serialisation).

    .venv/bin/python -m bench.publish [--jobs 1000] [--rounds 3] [--rtt-ms 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
from moto import mock_aws

from bench.report import write_section
from bench.statements import count_statements, per
from cli.scratch_database import scratch_database
from db import DB, JobRequest, Queue, claim_job, complete_job, create_db, mark_sent, publish, publish_many


class SinkSqs:
    """Accepts every message after `rtt` seconds per API call (one network round trip)."""

    def __init__(self, rtt: float) -> None:
        self.rtt = rtt
        self.received = 0

    def send_message(self, **_kwargs: Any) -> dict[str, Any]:
        time.sleep(self.rtt)
        self.received += 1
        return {"MessageId": str(self.received)}

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        time.sleep(self.rtt)
        self.received += len(kwargs["Entries"])
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]], "Failed": []}


def race(db: DB, n: int, rounds: int, make_queue: Callable[[], Queue]) -> tuple[float, float]:
    """Median seconds for n x publish and for publish_many(n), interleaved round by round."""
    singles, batches = [], []
    for _ in range(rounds):
        queue = make_queue()
        start = time.perf_counter()
        for i in range(n):
            publish(db, "test-echo", {"i": i}, queue=queue)
        singles.append(time.perf_counter() - start)
        queue = make_queue()
        start = time.perf_counter()
        publish_many(db, [JobRequest("test-echo", {"i": i}) for i in range(n)], queue=queue)
        batches.append(time.perf_counter() - start)
    return statistics.median(singles), statistics.median(batches)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rtt-ms", type=float, default=5.0)
    args = parser.parse_args()
    n = args.jobs
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")

    with scratch_database(prefix="jobstack_bench") as url, mock_aws():
        db = create_db(url)
        sqs = boto3.client("sqs", region_name="us-east-1")
        counter = iter(range(1_000_000))

        def moto_queue() -> Queue:
            return Queue(sqs, sqs.create_queue(QueueName=f"bench-{next(counter)}")["QueueUrl"])

        queue = moto_queue()
        publish(db, "test-echo", {"warm": True}, queue=queue)  # connect and warm caches outside the timings
        with count_statements(db) as publish_counts:
            jobs = [publish(db, "test-echo", {"i": i}, queue=queue) for i in range(100)]
        with count_statements(db) as cycle_counts:
            for job in jobs:
                claim = claim_job(db, job.id, stale_after=timedelta(minutes=15))
                complete_job(db, job.id, attempt=claim.job.attempts if claim.job else None)
        with count_statements(db) as many_counts:
            publish_many(db, [JobRequest("test-echo", {"i": i}) for i in range(n)], queue=moto_queue())

        # What recording `sent_at` adds to a publish: the same UPDATE, alone, timed in this run.
        start = time.perf_counter()
        for job in jobs:
            mark_sent(db, [job.id])
        mark_ms = (time.perf_counter() - start) * 1000 / len(jobs)

        moto_n = 100
        moto = race(db, moto_n, args.rounds, moto_queue)
        local = race(db, n, args.rounds, lambda: Queue(SinkSqs(0.0), "sink"))
        remote = race(db, n, args.rounds, lambda: Queue(SinkSqs(args.rtt_ms / 1000), "sink"))
        db.dispose()

    def row(label: str, jobs: int, times: tuple[float, float]) -> str:
        single, batch = times
        return (
            f"| {label} | {jobs} | {single:.2f} s ({jobs / single:,.0f}/s) | {batch:.2f} s ({jobs / batch:,.0f}/s) "
            f"| **{single / batch:.1f}x** |"
        )

    body = f"""
| figure | result | target |
|---|---|---|
| statements per `publish` | {per(publish_counts, 100)} | 1 INSERT, then 1 UPDATE of `sent_at` (autocommit) |
| statements per claim + complete cycle | {per(cycle_counts, 100)} | 2 (+ their commits) |
| statements for `publish_many({n})` | {per(many_counts, 1)} | a multi-row INSERT per 1000 rows, COMMIT, 1 UPDATE |

Recording `sent_at` (what lets the sweeper re-send only lost messages) costs {mark_ms:.2f} ms per `publish`
here, {mark_ms / (local[0] * 1000 / n):.0%} of a whole `publish` with a free SQS stand-in (below), one UPDATE per
`publish_many` call.

`publish_many(N)` against N x `publish`, real PostgreSQL, median of {args.rounds} interleaved rounds:

| SQS stand-in | N | N x `publish` | `publish_many(N)` | speed-up |
|---|---|---|---|---|
{row("moto (in process)", moto_n, moto)}
{row("sink, 0 ms per call (our own cost)", n, local)}
{row(f"sink, {args.rtt_ms:g} ms per call (in-region SQS)", n, remote)}

moto is run at N={moto_n} because its send cost grows with queue depth (it rescans stored messages on each
send), which would measure moto rather than the publisher at N={n}.
"""
    print(body)
    write_section("publish", "make bench  (or: .venv/bin/python -m bench.publish)", body)


if __name__ == "__main__":
    main()
