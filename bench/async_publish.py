"""Async publishing (db/async_outbox.py): why SQS is called on a thread, measured.

An async web app (FastAPI on one event loop) serves many requests at once. Each request here writes a job
with `enqueue_async` on an AsyncSession (psycopg's async driver, real PostgreSQL) and commits; the commit
sends the message. SQS is a sink that answers after a fixed round trip (5 ms, SQS in the same region; see
bench/publish.py for why not moto). Two ways to call it from the commit, in the same run, interleaved:

- "thread": as shipped, boto3 on a thread, awaited (asyncio.to_thread): the loop serves other requests;
- "inline": boto3 called in the loop's own thread, as a sync outbox would: every request waits for every
  other request's send.

It also times the thread's hop alone (`await asyncio.to_thread` of nothing). aioboto3 is not measured: it
pins its own botocore range, which cannot be installed beside the boto3 this package declares (pip says
ResolutionImpossible for aioboto3 15.5.0 with boto3 1.44.5).

    .venv/bin/python -m bench.async_publish [--requests 200] [--concurrency 20] [--rtt-ms 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

import db.after_commit as after_commit
from bench.publish import SinkSqs
from bench.report import write_section
from cli.scratch_database import scratch_database
from db import Queue, enqueue_async

_THREADED = after_commit._send_committed


def _inline(jobs: Any, queue: Any, db: Any) -> None:
    """The send a sync outbox makes, in the loop's own thread."""
    after_commit.send(jobs, queue=queue, db=db)


async def _serve(url: str, queue: Queue, requests: int, concurrency: int) -> tuple[float, list[float]]:
    """`requests` signups, at most `concurrency` at once: the wall time and each request's latency."""
    engine = create_async_engine(url, pool_size=concurrency, max_overflow=0)
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(n: int) -> None:
        async with gate:
            started = time.perf_counter()
            async with AsyncSession(engine) as session:
                await enqueue_async(session, "test-echo", {"n": n}, queue=queue)
                await session.commit()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(requests)))
    wall = time.perf_counter() - started
    await engine.dispose()
    return wall, latencies


async def _hop_us(samples: int = 2000) -> float:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        await asyncio.to_thread(lambda: None)
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def _p(values: list[float], q: float) -> float:
    return sorted(values)[min(int(len(values) * q), len(values) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rtt-ms", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, list[tuple[float, list[float]]]] = {"thread": [], "inline": []}
    with scratch_database() as url:
        async_url = make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        queue = Queue(client=SinkSqs(args.rtt_ms / 1000), url="https://sqs.example/jobs")
        for _ in range(args.rounds):  # interleaved, so a machine growing busier weighs on both alike
            for mode, send in (("thread", _THREADED), ("inline", _inline)):
                after_commit._send_committed = send
                try:
                    results[mode].append(asyncio.run(_serve(async_url, queue, args.requests, args.concurrency)))
                finally:
                    after_commit._send_committed = _THREADED
        hop = asyncio.run(_hop_us())
    lines = [
        f"{args.requests} requests, at most {args.concurrency} at once, on one event loop; each an "
        f"`enqueue_async` on an AsyncSession and its commit (real PostgreSQL, psycopg async), SQS a sink "
        f"answering in {args.rtt_ms:g} ms; median of {args.rounds} interleaved rounds:",
        "",
        "| SQS called | requests/s | latency p50 | latency p95 |",
        "|---|---|---|---|",
    ]
    rates = {}
    for mode, runs in results.items():
        walls = [wall for wall, _ in runs]
        wall = statistics.median(walls)
        run = runs[walls.index(wall)] if wall in walls else runs[0]
        rates[mode] = args.requests / wall
        lines.append(f"| {mode} | {rates[mode]:,.0f} | {_p(run[1], 0.5):.1f} ms | {_p(run[1], 0.95):.1f} ms |")
    lines += [
        "",
        f"The thread serves {rates['thread'] / rates['inline']:.1f}x the requests per second of the inline send; "
        f"its hop alone (`await asyncio.to_thread` of nothing) costs {hop:.0f} µs (median of 2,000).",
    ]
    print("\n".join(lines))
    if not args.no_write:
        command = (
            f".venv/bin/python -m bench.async_publish --requests {args.requests} --concurrency {args.concurrency} "
            f"--rtt-ms {args.rtt_ms:g} --rounds {args.rounds}"
        )
        write_section("async publish", command, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
