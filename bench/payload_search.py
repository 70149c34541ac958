"""What search by payload costs a publish: migration 0013's GIN index (`jsonb_path_ops`) against the same
table without it, in one run (real PostgreSQL, SQS stood in by a sink that answers at once, so the figure is
the database's and ours).

Two databases side by side, one with the index and one with it dropped, each filled first with `--rows`
jobs (an index's insert cost grows with its size); then interleaved rounds of `publish` one at a time and
of `publish_many` in batches of 100, each job's payload a realistic one of ten keys. GIN's fast update (the
default) appends new entries to a pending list that a VACUUM or a full list merges into the index: the
rounds are long enough to include such merges, and the p95 of single publishes shows them.

    .venv/bin/python -m bench.payload_search [--rows 200000] [--jobs 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from sqlalchemy import text

from bench.publish import SinkSqs
from bench.report import write_section
from cli.scratch_database import scratch_database
from db import DB, JobRequest, Queue, create_db, publish, publish_many

FILL = """
INSERT INTO background_jobs (id, type, payload, status, attempts, max_attempts, created_at, updated_at)
SELECT gen_random_uuid(), 'test-echo', jsonb_build_object('customer_id', g % 50000, 'order', g, 'plan', 'pro',
       'email', 'user' || g || '@example.com', 'amount', g % 997, 'currency', 'EUR',
       'items', jsonb_build_array(g % 7, g % 11),
       'address', jsonb_build_object('city', 'Oslo', 'zip', lpad((g % 9999)::text, 4, '0')), 'urgent', g % 5 = 0,
       'note', NULL), 'completed', 1, 5, now(), now()
FROM generate_series(1, :rows) AS g
"""


def _payload(n: int) -> dict[str, Any]:
    return {
        "customer_id": n % 50000, "order": n, "plan": "pro", "email": f"user{n}@example.com", "amount": n % 997,
        "currency": "EUR", "items": [n % 7, n % 11], "address": {"city": "Oslo", "zip": f"{n % 9999:04d}"},
        "urgent": n % 5 == 0, "note": None,
    }  # fmt: skip


def _singles(db: DB, queue: Queue, start: int, n: int) -> list[float]:
    samples = []
    for i in range(start, start + n):
        began = time.perf_counter()
        publish(db, "test-echo", _payload(i), queue=queue)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def _batches(db: DB, queue: Queue, start: int, n: int) -> float:
    began = time.perf_counter()
    for i in range(start, start + n, 100):
        publish_many(db, [JobRequest("test-echo", _payload(j)) for j in range(i, i + 100)], queue=queue)
    return (time.perf_counter() - began) * 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    queue = Queue(SinkSqs(0.0), "sink")
    single: dict[str, list[float]] = {"with": [], "without": []}
    p95: dict[str, list[float]] = {"with": [], "without": []}
    batched: dict[str, list[float]] = {"with": [], "without": []}
    sizes: dict[str, str] = {}
    with (
        scratch_database(prefix="jobstack_bench_search") as with_url,
        scratch_database(prefix="jobstack_bench_search") as without_url,
    ):
        dbs = {"with": create_db(with_url), "without": create_db(without_url)}
        with dbs["without"].begin() as conn:
            conn.execute(text("DROP INDEX ix_background_jobs_payload"))
        for db in dbs.values():
            with db.begin() as conn:
                conn.execute(text(FILL), {"rows": args.rows})
            with db.autocommit() as conn:
                conn.exec_driver_sql("VACUUM ANALYZE background_jobs")
        start = 10_000_000
        for round_ in range(args.rounds):
            for name in ("with", "without") if round_ % 2 == 0 else ("without", "with"):
                samples = _singles(dbs[name], queue, start, args.jobs)
                single[name].append(statistics.median(samples))
                p95[name].append(statistics.quantiles(samples, n=20, method="inclusive")[18])
                batched[name].append(_batches(dbs[name], queue, start + args.jobs, args.jobs))
                start += 2 * args.jobs
        with dbs["with"].autocommit() as conn:
            sizes["index"] = conn.execute(
                text("SELECT pg_size_pretty(pg_relation_size('ix_background_jobs_payload'))")
            ).scalar_one()
            sizes["table"] = conn.execute(
                text("SELECT pg_size_pretty(pg_relation_size('background_jobs'))")
            ).scalar_one()
        for db in dbs.values():
            db.dispose()

    def row(label: str, figures: dict[str, list[float]]) -> str:
        with_, without = statistics.median(figures["with"]), statistics.median(figures["without"])
        return f"| {label} | {without:.3f} | {with_:.3f} | {with_ / without:.2f}x |"

    body = f"""
A publish's cost with migration 0013's GIN index of payloads against the same table without it, in one run:
both tables first filled with {args.rows:,} jobs, then {args.rounds} interleaved rounds of {args.jobs:,} single
publishes and {args.jobs:,} jobs in `publish_many` batches of 100 on each; a payload of ten keys (nested object
and list included); SQS stood in by a sink that answers at once. Medians of the rounds' figures, in ms per job.

| publish | without the index | with it | with / without |
|---|---:|---:|---:|
{row("one at a time, p50", single)}
{row("one at a time, p95", p95)}
{row("publish_many, 100 a batch", batched)}

The index was {sizes["index"]} beside a table of {sizes["table"]} at the end of the run.
"""
    write_section(
        "payload search", f".venv/bin/python -m bench.payload_search --rows {args.rows} --jobs {args.jobs}", body
    )
    print(body)


if __name__ == "__main__":
    main()
