"""What workflows cost, against plain jobs in the same run (real PostgreSQL, no SQS: the database is the cost).

- Completing a group's members against completing plain jobs: the worker's own statements (a batch of 10:
  claim, nine complete-and-claim, the last completion), 8 threads at once. A member's completion also
  settles its dependency row and counts its callback down in the same statement; every member of one
  group counts down the same callback row, so "one group" is the worst case for contention; "100 groups"
  spreads it. Statements per job are counted; jobs/s and ms per job are medians over interleaved rounds.
- Writing a group (members, callback and dependency rows, in one transaction) against writing the same
  number of plain jobs, at 1,000 and 10,000 members.
- A transactional handler (BEGIN, the handler's INSERT, the completion, COMMIT) against a plain job whose
  handler writes the same row in its own transaction.

    .venv/bin/python -m bench.workflows [--jobs 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from pydantic import BaseModel
from sqlalchemy import text

from bench.report import write_section
from bench.statements import count_statements
from cli.scratch_database import scratch_database
from db import DB, ClaimPlan, JobRequest, claim_job, create_db, register_job_type
from db.claiming import claim_many
from db.lifecycle import complete_many, finish_job
from db.outbox import enqueue_many
from db.workflows import enqueue_group

JOB_TYPE = "bench-noop"
STALE_AFTER = timedelta(minutes=15)
PLAN = ClaimPlan(JOB_TYPE, STALE_AFTER)  # composed once, as a worker composes it at start-up
BATCH = 10
THREADS = 8


class _Empty(BaseModel):
    n: int = 0


def _attempt(db: DB, job_id: uuid.UUID) -> int:
    claim = claim_job(db, job_id, stale_after=STALE_AFTER, job_type=JOB_TYPE)
    if claim.job is None:
        raise AssertionError(f"bench.workflows: expected a claim, got {claim.outcome}")
    return claim.job.attempts


def _run_chain(db: DB, chain: list[uuid.UUID], batched: bool = False) -> None:
    """A batch's database work in per-job mode (the default), or with `completion: batched` (one claim, one
    completion for the batch), as worker/completion.py does it."""
    if batched:
        claims = claim_many(db, [(job_id, JOB_TYPE) for job_id in chain], stale_after=STALE_AFTER)
        assert len(claims) == len(chain)
        assert len(complete_many(db, [(i, c.job.attempts) for i, c in claims.items()]).completed) == len(chain)
        return
    held = (chain[0], _attempt(db, chain[0]))
    for job_id in chain[1:]:
        finished, claim = PLAN.complete_and_claim(db, held, job_id)
        assert finished.completed
        assert claim.job is not None
        held = (job_id, claim.job.attempts)
    assert finish_job(db, held[0], attempt=held[1]).completed


def _fresh(db: DB, n: int, groups: int) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """An emptied table with `n` pending jobs: plain (groups = 0) or members of `groups` groups (callbacks
    waiting). Returns the jobs' ids and the callbacks' ids."""
    with db.begin() as conn:
        conn.execute(text("TRUNCATE background_jobs CASCADE"))
        if not groups:
            jobs = enqueue_many(conn, [JobRequest(JOB_TYPE, {"n": i}) for i in range(n)])
            return [j.id for j in jobs], []
        ids: list[uuid.UUID] = []
        callbacks: list[uuid.UUID] = []
        for g in range(groups):
            members = [JobRequest(JOB_TYPE, {"n": i}) for i in range(g * n // groups, (g + 1) * n // groups)]
            group = enqueue_group(conn, members, then=JobRequest(JOB_TYPE, {"n": -1}))
            ids += [j.id for j in group.jobs]
            assert group.then is not None
            callbacks.append(group.then.id)
    with db.autocommit() as conn:
        conn.execute(text("VACUUM ANALYZE background_jobs"))
        conn.execute(text("VACUUM ANALYZE job_dependencies"))
    return ids, callbacks


def _complete_all(db: DB, ids: list[uuid.UUID], threads: int, batched: bool = False) -> float:
    """Seconds for `threads` threads to run every chain of BATCH jobs of `ids`."""
    chains = [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
    start = threading.Barrier(threads + 1)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        start.wait()
        while True:
            with lock:
                if not chains:
                    return
                chain = chains.pop()
            try:
                _run_chain(db, chain, batched)
            except BaseException as err:
                errors.append(err)
                return

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - began


def _released_once(db: DB, callbacks: list[uuid.UUID]) -> None:
    if not callbacks:
        return
    with db.autocommit() as conn:
        statuses = conn.execute(
            text("SELECT status, count(*) FROM background_jobs WHERE id = ANY(:ids) GROUP BY 1"), {"ids": callbacks}
        ).all()
    assert [tuple(s) for s in statuses] == [("pending", len(callbacks))], statuses


def _statements_per_job(db: DB, groups: int, batched: bool) -> float:
    ids, _ = _fresh(db, BATCH, groups)
    with count_statements(db) as counts:
        _run_chain(db, ids, batched)
    return sum(v for k, v in counts.items() if not k.startswith("(") and k != "COMMIT") / BATCH


def _timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return (time.perf_counter() - began) * 1000


def _write_cost(db: DB, n: int) -> tuple[float, float]:
    """(ms to write n plain jobs, ms to write a group of n and its callback), each in one transaction."""

    def plain() -> None:
        with db.begin() as conn:
            enqueue_many(conn, [JobRequest(JOB_TYPE, {"n": i}) for i in range(n)])

    def group() -> None:
        with db.begin() as conn:
            enqueue_group(conn, [JobRequest(JOB_TYPE, {"n": i}) for i in range(n)], then=JobRequest(JOB_TYPE, {}))

    with db.begin() as conn:
        conn.execute(text("TRUNCATE background_jobs CASCADE"))
    return _timed(plain), _timed(group)


def _transactional_cost(db: DB, n: int) -> tuple[float, float]:
    """(ms per plain job whose handler writes a row in its own transaction, ms per transactional job)."""
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_ledger (job_id uuid PRIMARY KEY, n integer)"))
        conn.execute(text("TRUNCATE bench_ledger"))
    ids, _ = _fresh(db, 2 * n, 0)
    plain_ids, transactional_ids = ids[:n], ids[n:]
    insert = text("INSERT INTO bench_ledger (job_id, n) VALUES (:id, 1)")

    def plain() -> None:
        for job_id in plain_ids:
            attempt = _attempt(db, job_id)
            with db.begin() as conn:
                conn.execute(insert, {"id": job_id})
            assert finish_job(db, job_id, attempt=attempt).completed

    def transactional() -> None:
        for job_id in transactional_ids:
            attempt = _attempt(db, job_id)
            with db.begin() as conn:
                conn.execute(insert, {"id": job_id})
                assert finish_job(conn, job_id, attempt=attempt).completed

    return _timed(plain) / n, _timed(transactional) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    register_job_type(JOB_TYPE, _Empty, max_attempts=5)
    with scratch_database() as url:
        db = create_db(url, pool_size=THREADS + 2)
        kinds = {  # (groups, completion: batched)
            "plain jobs": (0, False),
            "members of one group": (1, False),
            "members of 100 groups": (100, False),
            "plain jobs, `completion: batched`": (0, True),
            "members of one group, `completion: batched`": (1, True),
        }
        statements = {kind: _statements_per_job(db, g, batched) for kind, (g, batched) in kinds.items()}
        rates: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(args.rounds):  # interleaved: drift on a noisy machine touches every kind alike
            for kind, (groups, batched) in kinds.items():
                ids, callbacks = _fresh(db, args.jobs, groups)
                rates[kind].append(args.jobs / _complete_all(db, ids, THREADS, batched))
                _released_once(db, callbacks)
        latency: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(args.rounds):
            for kind, (groups, batched) in kinds.items():
                ids, _ = _fresh(db, 200, groups)
                latency[kind].append(_complete_all(db, ids, 1, batched) * 1000 / len(ids))
        writes = {n: [_write_cost(db, n) for _ in range(3)] for n in (1_000, 10_000)}
        transactional = [_transactional_cost(db, 200) for _ in range(args.rounds)]
        db.dispose()

    baseline = {kind: "plain jobs, `completion: batched`" if "batched" in kind else "plain jobs" for kind in kinds}
    lines = [
        f"Completing {args.jobs} jobs with the worker's per-job statements (batches of {BATCH}), {THREADS} threads,"
        f" median of {args.rounds} interleaved rounds; ms per job with one thread, 200 jobs:",
        "",
        "| jobs | statements per job | jobs/s (8 threads) | vs plain jobs (same mode) | ms per job (1 thread) |",
        "|---|---|---|---|---|",
    ]
    for kind in kinds:
        rate = statistics.median(rates[kind])
        lines.append(
            f"| {kind} | {statements[kind]:.1f} | {rate:,.0f} | {rate / statistics.median(rates[baseline[kind]]):.2f}x"
            f" | {statistics.median(latency[kind]):.2f} |"
        )
    lines += ["", "Writing jobs in one transaction (median of 3, ms):", "", "| jobs | plain | a group + its callback |"]
    lines.append("|---|---|---|")
    for n, runs in writes.items():
        lines.append(
            f"| {n:,} | {statistics.median(r[0] for r in runs):,.0f} | {statistics.median(r[1] for r in runs):,.0f} |"
        )
    plain_ms = statistics.median(t[0] for t in transactional)
    tx_ms = statistics.median(t[1] for t in transactional)
    lines += [
        "",
        "A handler that writes one row (claim, then its INSERT and the completion), ms per job, median of"
        f" {args.rounds}:",
        "",
        "| handler | statements | ms per job |",
        "|---|---|---|",
        f"| plain (INSERT in its own transaction, then the completion) | claim, BEGIN, INSERT, COMMIT, completion"
        f" | {plain_ms:.2f} |",
        f"| transactional (`@job(..., transactional=True)`) | claim, BEGIN, INSERT, completion, COMMIT | {tx_ms:.2f} |",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("Workflows", "python -m bench.workflows", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
