"""The jobs table at 10,000,000 rows against the same at 10,000: every operation the worker, the sweeper, a
publisher and an operator run, measured side by side in one run. Target (issue 26): each within 1.5x of its
10,000-row figure, except pruning, whose cost is per row deleted (reported in rows/s).

Both tables hold the same live work (2,000 pending, 200 running, 200 failed with attempts left, 1,000
scheduled for later): what differs is history, 94% completed, 3% failed for good and 3% cancelled, spread
over 30 days. A job system's table grows by its history; the work on it does not. Each table is built by one
INSERT ... SELECT over generate_series with the secondary indexes dropped, which are then rebuilt (as
`CREATE INDEX` does for an existing table), then VACUUM ANALYZE.

Each figure is the median of `--repeat` calls, small and large interleaved so both meet the same machine.

    python -m bench.table_scale [--rows 10000000] [--small 10000] [--repeat 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import text

from bench.report import write_section
from cli.scratch_database import scratch_database
from db import DB, JobRequest, JobStatus, create_db, enqueue_many, utcnow
from db.admin import count_by_status_and_type, list_jobs, oldest_pending
from db.claiming import ClaimPlan, claim_job
from db.readings import job_counts
from db.relay import ResendWindows, abandoned_jobs, mark_sent, prune_jobs, take_due, take_for_resend
from stacks.settings_model import Settings
from worker.sweeper import PRUNE_SECONDS

TYPES = ["send-email", "resize-image", "sync-crm", "charge", "export-report", "webhook", "index-doc", "nightly"]
LIVE = {"pending": 2_000, "processing": 200, "retrying": 200, "scheduled": 1_000}
STALE_AFTER = timedelta(minutes=15)
WINDOWS = ResendWindows(
    unsent_after=timedelta(minutes=5),
    lost_after=timedelta(minutes=20),
    expired_after=timedelta(days=4, minutes=30),
    stale_after=STALE_AFTER,
)
PRUNE_BATCH = 1000
#: The completion rate the pruning figure is compared with: a busy stack's sustained jobs/s.
COMPLETIONS_PER_SECOND = 1_000

HISTORY = """
INSERT INTO background_jobs (id, type, payload, status, attempts, max_attempts, error, idempotency_key,
                             created_at, updated_at, started_at, completed_at, sent_at, send_count)
SELECT gen_random_uuid(), (CAST(:types AS text[]))[1 + (g % 8)], jsonb_build_object('n', g),
       s.status, CASE WHEN s.status = 'failed' THEN 5 WHEN s.status = 'completed' THEN 1 ELSE 0 END, 5,
       CASE WHEN s.status = 'failed' THEN 'TimeoutError: upstream took longer than 30 s' END,
       CASE WHEN g % 10 = 0 THEN 'key-' || g END,
       s.created, s.created + interval '2 seconds',
       CASE WHEN s.status <> 'cancelled' THEN s.created + interval '200 milliseconds' END,
       CASE WHEN s.status = 'completed' THEN s.created + interval '2 seconds' END,
       s.created + interval '20 milliseconds', 1
FROM (SELECT g, now() - interval '1 hour' - random() * interval '30 days' AS created,
             CASE WHEN random() < 0.94 THEN 'completed' WHEN random() < 0.5 THEN 'failed' ELSE 'cancelled' END AS status
      FROM generate_series(1, :rows) AS g) AS s
"""

LIVE_ROWS = """
INSERT INTO background_jobs (id, type, payload, status, attempts, max_attempts, error, created_at, updated_at,
                             started_at, sent_at, send_count, run_at)
SELECT gen_random_uuid(), (CAST(:types AS text[]))[1 + (g % 8)], '{}'::jsonb, CAST(:status AS varchar),
       CASE WHEN CAST(:status AS varchar) = 'failed' THEN 2 WHEN :status = 'processing' THEN 1 ELSE 0 END, 5,
       CASE WHEN CAST(:status AS varchar) = 'failed' THEN 'boom' END,
       now() - interval '1 minute', now() - interval '1 minute',
       CASE WHEN CAST(:status AS varchar) IN ('failed', 'processing') THEN now() - interval '1 minute' END,
       CASE WHEN CAST(:status AS varchar) <> 'scheduled' THEN now() - interval '1 minute' END,
       CASE WHEN CAST(:status AS varchar) <> 'scheduled' THEN 1 ELSE 0 END,
       CASE WHEN CAST(:status AS varchar) = 'scheduled' THEN now() + (g % 1000) * interval '1 hour' END
FROM generate_series(1, :rows) AS g
"""


def build(url: str, history: int) -> tuple[DB, float]:
    """The table with `history` finished jobs and LIVE's work; seconds it took."""
    db = create_db(url, pool_size=2)
    started = time.perf_counter()
    with db.autocommit() as conn:
        definitions = conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'background_jobs' "
                "AND indexname <> 'pk_background_jobs' AND indexdef NOT LIKE 'CREATE UNIQUE%'"
            )
        ).all()
        for name, _ in definitions:
            conn.execute(text(f'DROP INDEX "{name}"'))
    with db.begin() as conn:
        conn.execute(text(HISTORY), {"rows": history, "types": TYPES})
        for status, rows in (("pending", LIVE["pending"]), ("processing", LIVE["processing"]),
                             ("failed", LIVE["retrying"]), ("scheduled", LIVE["scheduled"])):  # fmt: skip
            conn.execute(text(LIVE_ROWS), {"rows": rows, "types": TYPES, "status": status})
    with db.autocommit() as conn:
        for _, definition in definitions:
            conn.execute(text(definition))
        conn.execute(text("VACUUM ANALYZE background_jobs"))
    return db, time.perf_counter() - started


@dataclass
class Table:
    name: str
    db: DB
    pending: Iterator[tuple[UUID, str]]
    claimed: list[tuple[UUID, int]]


def _pending(db: DB) -> Iterator[tuple[UUID, str]]:
    with db.autocommit() as conn:
        rows = conn.execute(text("SELECT id, type FROM background_jobs WHERE status = 'pending'")).all()
    return iter([(r.id, r.type) for r in rows])


def _claim(table: Table) -> None:
    job_id, job_type = next(table.pending)
    claim = claim_job(table.db, job_id, stale_after=STALE_AFTER, job_type=job_type)
    assert claim.job is not None
    table.claimed.append((job_id, claim.job.attempts))


def _complete_and_claim(table: Table) -> None:
    done = table.claimed.pop()
    job_id, job_type = next(table.pending)
    completed, claim = ClaimPlan(job_type, STALE_AFTER).complete_and_claim(table.db, done, job_id)
    assert completed.completed
    assert claim.job is not None
    table.claimed.append((job_id, claim.job.attempts))


def _publish(table: Table) -> None:
    """A publish's database work: the row's INSERT, then recording the send (the SQS call is not timed)."""
    with table.db.begin() as conn:
        [job] = enqueue_many(conn, [JobRequest("welcome-email", {"email": "ada@example.com"})])
    mark_sent(table.db, [job.id])


OPERATIONS: list[tuple[str, Callable[[Table], Any]]] = [
    ("claim", _claim),
    ("complete and claim", _complete_and_claim),
    ("publish (INSERT + sent)", _publish),
    ("sweeper: resend", lambda t: take_for_resend(t.db, WINDOWS, limit=500)),
    ("sweeper: release due", lambda t: take_due(t.db, horizon=utcnow() + timedelta(minutes=15))),
    ("sweeper: abandoned", lambda t: abandoned_jobs(t.db, STALE_AFTER)),
    ("jobstack stats as it was (GROUP BY status, type)", lambda t: count_by_status_and_type(t.db)),
    ("jobstack stats (counts, oldest pending)", lambda t: (job_counts(t.db), oldest_pending(t.db))),
    ("jobstack list", lambda t: list_jobs(t.db, limit=50)),
    ("jobstack list --status failed", lambda t: list_jobs(t.db, status=JobStatus.FAILED, limit=50)),
]


def median_ms(calls: list[float]) -> float:
    return statistics.median(calls) * 1000


def prune_rate(db: DB, batches: int) -> tuple[int, float]:
    """Rows deleted by `batches` bounded statements (completed, older than 7 days), and rows per second."""
    cutoff = utcnow() - timedelta(days=7)
    started, deleted = time.perf_counter(), 0
    for _ in range(batches):
        deleted += prune_jobs(db, JobStatus.COMPLETED, cutoff, limit=PRUNE_BATCH)
    return deleted, deleted / (time.perf_counter() - started)


@contextmanager
def two_tables(small: int, large: int) -> Iterator[tuple[Table, Table, float]]:
    with (
        scratch_database(prefix="jobstack_bench_small") as small_url,
        scratch_database(prefix="jobstack_bench_large") as large_url,
    ):
        small_db, _ = build(small_url, small)
        large_db, seconds = build(large_url, large)
        try:
            yield (
                Table("small", small_db, _pending(small_db), []),
                Table("large", large_db, _pending(large_db), []),
                seconds,
            )
        finally:
            small_db.dispose()
            large_db.dispose()


def pruning_capacity(rows_per_second: float) -> str:
    """What one sweeper run deletes at the measured rate against what a busy stack leaves between runs:
    every number computed from this run's rate and the stack's own constants."""
    interval = Settings.sweep_interval_minutes  # the stack's default: the sweeper's schedule
    per_run, left = rows_per_second * PRUNE_SECONDS, COMPLETIONS_PER_SECOND * interval * 60
    return (
        f"The sweeper prunes statement after statement for up to {PRUNE_SECONDS:.0f} s a run (worker/sweeper.py: "
        f"PRUNE_SECONDS), so at the large table's rate a run every {interval} minutes deletes about "
        f"{per_run / 1e6:.1f} million rows: {per_run / left:.1f} times the {left:,} that "
        f"{COMPLETIONS_PER_SECOND:,} completed jobs/s leave behind in {interval} minutes."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--prune-batches", type=int, default=30)
    args = parser.parse_args()
    assert args.repeat * 2 < LIVE["pending"], "claims consume pending jobs: --repeat must stay below 1,000"
    results: list[tuple[str, float, float]] = []
    with two_tables(args.small, args.rows) as (small, large, seconds):
        for name, operation in OPERATIONS:
            for table in (small, large):
                operation(table)  # warm: plans cached, pages read
            timings: dict[str, list[float]] = {"small": [], "large": []}
            for _ in range(args.repeat):
                for table in (small, large):
                    started = time.perf_counter()
                    operation(table)
                    timings[table.name].append(time.perf_counter() - started)
            results.append((name, median_ms(timings["small"]), median_ms(timings["large"])))
        small_pruned, small_rate = prune_rate(small.db, args.prune_batches)
        large_pruned, large_rate = prune_rate(large.db, args.prune_batches)
    rows = "\n".join(
        f"| {name} | {s:.2f} | {g:.2f} | {g / s:.2f}x | {'yes' if g / s <= 1.5 else '**no**'} |"
        for name, s, g in results
    )
    body = f"""
Each operation on a table of {args.rows:,} jobs beside the same on {args.small:,}, in one run (median of
{args.repeat} calls each, interleaved). Both hold the same live work (pending {LIVE["pending"]:,}, running
{LIVE["processing"]}, failed with attempts left {LIVE["retrying"]}, scheduled for later {LIVE["scheduled"]:,});
the rest is history (94% completed, 3% failed for good, 3% cancelled, over 30 days). The large table was built
in {seconds:.0f} s (generate_series, indexes rebuilt, VACUUM ANALYZE). Target: within 1.5x.

| operation | {args.small:,} rows, ms | {args.rows:,} rows, ms | ratio | within 1.5x |
|---|---:|---:|---:|---|
{rows}

Pruning (cost per row deleted, so rows/s): {args.prune_batches} statements of {PRUNE_BATCH:,} completed rows
each, oldest first: {large_rate:,.0f} rows/s on the large table ({large_pruned:,} rows), {small_rate:,.0f}
rows/s on the small one ({small_pruned:,} rows). {pruning_capacity(large_rate)}

"jobstack stats as it was" is the GROUP BY status, type that `jobstack stats` ran before this change, measured to
show why it was replaced: it reads every row.
"""
    write_section(
        "table_scale",
        f"python -m bench.table_scale --rows {args.rows} --small {args.small} --repeat {args.repeat}",
        body,
    )
    print(body)


if __name__ == "__main__":
    main()
