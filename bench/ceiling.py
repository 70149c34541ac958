"""The database's ceiling: jobs/s one PostgreSQL sustains through a transaction-mode PgBouncer.

Lambda scales to hundreds of containers; the shared database does not, so this is the number users size
their database by. P worker processes (P = 2, 4, 8, 16) run the worker's own claim/complete statements
(db.lifecycle, through create_db as the worker connects) against one PostgreSQL behind a PgBouncer of
the benchmark's own, as fast as they can, for a fixed time:

- "two statements" is the cost before issue 14 (and of a batch of 1): claim, then complete, per job.
- "combined" is a batch of 10 in per-job mode (the default): claim the first, then nine
  `ClaimPlan.complete_and_claim`, then the last completion: 11 statements and 11 commits for 10 jobs.
- "batched" is a batch of 10 in a pool with `completion: batched`: one statement claims the ten, one
  completes them (db.lifecycle.claim_many, complete_many): 2 statements and 2 commits for 10 jobs.

Besides jobs/s (which on a small machine includes the clients' own CPU), it reports the database's CPU
per job: the CPU time of every postgres and pgbouncer process over the run, read from /proc, divided by
the jobs done. That figure does not depend on how many cores the clients took, so it scales to a bigger
database: cores / (CPU per job) is that server's CPU ceiling.

    make bench  (or: .venv/bin/python -m bench.ceiling)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.lambda_ids import lambda_invocation
from bench.pgbouncer import pgbouncer
from bench.report import write_section
from cli.scratch_database import scratch_database
from db import Claim, ClaimOutcome, ClaimPlan, claim_job, complete_job, create_db
from db.claiming import claim_many
from db.lifecycle import complete_many

JOB_TYPE = "bench-noop"
STALE_AFTER = timedelta(minutes=15)
PLAN = ClaimPlan(JOB_TYPE, STALE_AFTER)  # composed once, as a worker composes it at start-up
BATCH = 10
MODES = ("two statements", "combined", "batched")
_TICKS = os.sysconf("SC_CLK_TCK")


def _claimed(claim: Claim) -> int:
    """The claimed job's attempt (the completion's fence); a benchmark that claims nothing is wrong."""
    if claim.outcome is not ClaimOutcome.CLAIMED or claim.job is None:
        raise AssertionError(f"bench.ceiling: expected a claim, got {claim.outcome}")
    return claim.job.attempts


def _run_chain(db: Any, chain: list[uuid.UUID], mode: str) -> None:
    """One batch's database work for `chain`, as the worker does it in `mode`: one invocation's."""
    invocation = lambda_invocation()
    if mode == "batched":
        claims = claim_many(
            db, [(job_id, JOB_TYPE) for job_id in chain], stale_after=STALE_AFTER, invocation=invocation
        )
        assert len(claims) == len(chain), "bench.ceiling: the batch claim missed a job"
        assert len(complete_many(db, [(job_id, c.job.attempts) for job_id, c in claims.items()]).completed) == len(
            chain
        )
        return
    if mode == "two statements":
        for job_id in chain:
            attempt = _claimed(claim_job(db, job_id, stale_after=STALE_AFTER, job_type=JOB_TYPE, invocation=invocation))
            assert complete_job(db, job_id, attempt=attempt)
        return
    first = claim_job(db, chain[0], stale_after=STALE_AFTER, job_type=JOB_TYPE, invocation=invocation)
    held = (chain[0], _claimed(first))
    for job_id in chain[1:]:
        completed, claim = PLAN.complete_and_claim(db, held, job_id, invocation=invocation)
        assert completed.completed
        held = (job_id, _claimed(claim))
    assert complete_job(db, held[0], attempt=held[1])


def _worker(url: str, ids: list[uuid.UUID], mode: str, seconds: float, start: Any, out: Any) -> None:
    db = create_db(url)
    db.engine.connect().close()  # connect before the clock starts, as a warm Lambda container is
    start.wait()
    began, done = time.perf_counter(), 0
    while done < len(ids) and time.perf_counter() - began < seconds:
        chain = ids[done : done + BATCH]
        _run_chain(db, chain, mode)
        done += len(chain)
    out.put((done, time.perf_counter() - began, done >= len(ids)))
    db.dispose()


def _database_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each postgres and pgbouncer process alive now, by pid."""
    found: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text()
        except OSError:
            continue
        name = fields[fields.index("(") + 1 : fields.rindex(")")]
        if name in ("postgres", "pgbouncer"):
            rest = fields[fields.rindex(")") + 2 :].split()
            found[int(stat.parent.name)] = (int(rest[11]) + int(rest[12])) / _TICKS  # utime, stime (proc(5))
    return found


def _database_cpu_used(before: dict[int, float]) -> float:
    """The database's CPU seconds since `before`: each process's growth, a new one's whole. A backend that
    exited in between is not subtracted (a sum over live processes alone would shrink when one exits)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in _database_cpu().items())


def _fresh_jobs(admin: Any, n: int) -> list[uuid.UUID]:
    """`n` pending rows in an emptied, vacuumed table, after a checkpoint: every run starts alike."""
    with admin.connect() as conn:
        conn.execute(text("TRUNCATE background_jobs CASCADE"))
        ids = conn.execute(
            text(
                "INSERT INTO background_jobs (id, type, payload, status, attempts, max_attempts, created_at,"
                " updated_at, sent_at, send_count) SELECT gen_random_uuid(), :type, '{}'::jsonb, 'pending', 0, 5,"
                " now(), now(), now(), 1 FROM generate_series(1, :n) RETURNING id"
            ),
            {"type": JOB_TYPE, "n": n},
        ).scalars()
        result = list(ids)
        conn.execute(text("VACUUM ANALYZE background_jobs"))
        conn.execute(text("CHECKPOINT"))
    return result


def measure(admin: Any, url: str, mode: str, processes: int, seconds: float, jobs: int) -> tuple[float, float]:
    """(jobs/s, database CPU ms per job) for `processes` workers in `mode` for `seconds`."""
    ids = _fresh_jobs(admin, jobs)
    context = mp.get_context("spawn")
    start, out = context.Barrier(processes + 1), context.Queue()
    share = len(ids) // processes
    workers = [
        context.Process(target=_worker, args=(url, ids[i * share : (i + 1) * share], mode, seconds, start, out))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    start.wait()
    cpu_before, began = _database_cpu(), time.perf_counter()
    results = [out.get(timeout=seconds + 120) for _ in workers]
    wall, cpu = time.perf_counter() - began, _database_cpu_used(cpu_before)
    for worker in workers:
        worker.join()
        if worker.exitcode:
            raise SystemExit(f"bench.ceiling: a worker process failed ({worker.exitcode}); see its traceback above")
    if any(ran_out for _, _, ran_out in results):
        raise SystemExit(f"bench.ceiling: {jobs} jobs ran out before {seconds:g} s; raise --jobs")
    done = sum(n for n, _, _ in results)
    return done / wall, cpu * 1000 / done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0, help="each run's length")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; medians are reported")
    parser.add_argument("--jobs", type=int, default=40_000, help="pending rows made for each run")
    parser.add_argument("--pool-size", type=int, default=20, help="PgBouncer's server connections")
    parser.add_argument("--processes", default="2,4,8,16")
    args = parser.parse_args()
    counts = [int(p) for p in args.processes.split(",")]

    figures: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with scratch_database(prefix="jobstack_ceiling") as url, pgbouncer(url, pool_size=args.pool_size) as pooled:
        admin = create_engine(make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
        for _ in range(args.rounds):
            for processes in counts:
                for mode in MODES:
                    figures.setdefault((mode, processes), []).append(
                        measure(admin, pooled, mode, processes, args.seconds, args.jobs)
                    )
                    print(mode, processes, figures[mode, processes][-1], flush=True)
        admin.dispose()

    def median(mode: str, processes: int, index: int) -> float:
        return statistics.median(f[index] for f in figures[mode, processes])

    lines = []
    for processes in counts:
        jps = {mode: median(mode, processes, 0) for mode in MODES}
        cpu = {mode: median(mode, processes, 1) for mode in MODES}
        lines.append(
            f"| {processes} | {jps['two statements']:,.0f} | {jps['combined']:,.0f} | {jps['batched']:,.0f} "
            f"| **{jps['batched'] / jps['combined']:.2f}x** | {cpu['two statements']:.3f} ms "
            f"| {cpu['combined']:.3f} ms | {cpu['batched']:.3f} ms |"
        )
    per_job_cpu = min(median("combined", p, 1) for p in counts)
    batched_cpu = min(median("batched", p, 1) for p in counts)
    body = f"""
P worker processes, each a warm worker running its claim/complete statements back to back (no-op
handler), against one PostgreSQL through PgBouncer {args.pool_size} server connections, transaction mode; median
of {args.rounds} interleaved {args.seconds:g}-second runs. Clients, pooler and database share this machine's
{os.cpu_count()} cores, so jobs/s is a floor; the database's CPU per job (every postgres and pgbouncer
process, from /proc) is what sizes a server. Per job: batches of 10 in the default mode (11 statements);
batched: a pool's `completion: batched` (2 statements); 2 statements: a batch of 1.

| P | jobs/s, 2 statements | per job (default) | batched | batched / per job | DB CPU/job, 2 stmts | per job | batched |
|---|---|---|---|---|---|---|---|
{chr(10).join(lines)}

Sizing: a database with C cores spends about {per_job_cpu:.2f} ms of CPU per job in the default mode and
{batched_cpu:.2f} ms with `completion: batched`, so C cores saturate near C x {1000 / per_job_cpu:,.0f} and
C x {1000 / batched_cpu:,.0f} jobs/s before the disk's commit rate (one WAL flush per commit, grouped under
load) or the pooler's connections are the limit. Handlers that use the database add their own statements.
"""
    print(body)
    write_section("ceiling", "make bench  (or: .venv/bin/python -m bench.ceiling)", body)


if __name__ == "__main__":
    main()
