"""Load: 10,000 no-op jobs through `jobstack local` with 8 concurrent invocations and batches of 10.

`make reliability`, which writes the report's row, runs the 10,000; `make test` runs 1,000 (JOBSTACK_LOAD_JOBS,
set in the Makefile), which prove the same rules in a tenth of the time."""

from __future__ import annotations

import collections
import os
import threading
import time
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from db import DB, JobRequest, JobStatus, Queue, create_db, publish_many, resend
from db.models import jobs_table
from tests.support.esm import drain
from tests.support.worker_support import Calls

TOTAL = int(os.environ.get("JOBSTACK_LOAD_JOBS", "10000"))  # the Makefile sets it for `make test`
CONCURRENCY = 8
# moto's SQS rescans every stored message on each send and each received message, so a 10,000-deep queue
# measures moto, not us (hours instead of seconds). A feeder publishes in waves and keeps the queue at
# most WAVE + LOW_WATER deep, as a web app publishing steadily would; `moto_at_scale` removes the rest.
WAVE, LOW_WATER = 500, 300
DUPLICATE_EVERY = 20  # every 20th job's message is sent a second time, as SQS may deliver it twice
GIVE_UP_SECONDS = 900  # a lost message would otherwise keep the loop below waiting for it forever


class ConnectionWatch:
    """Samples pg_stat_activity for the workers' connections (application_name "jobstack") every 10 ms."""

    def __init__(self, url: str) -> None:
        plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn = psycopg.connect(plain, autocommit=True, application_name="load-watch")
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="connection-watch", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            row = self._conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = 'jobstack'"
            ).fetchone()
            self.peak = max(self.peak, int(row[0]) if row else 0)
            self.samples += 1
            self._stop.wait(0.01)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


def feed(db: DB, queue: Queue, done: threading.Event, errors: list[BaseException]) -> None:
    """Publish TOTAL jobs in waves, each when the queue's visible depth falls below LOW_WATER."""
    try:
        sent = 0
        while sent < TOTAL:
            attributes = queue.client.get_queue_attributes(
                QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            if int(attributes["ApproximateNumberOfMessages"]) >= LOW_WATER:
                time.sleep(0.02)
                continue
            wave = min(WAVE, TOTAL - sent)
            jobs = publish_many(db, [JobRequest("count-calls", {"n": sent + i}) for i in range(wave)], queue=queue)
            assert not resend(jobs[::DUPLICATE_EVERY], queue=queue)
            sent += wave
    except BaseException as err:  # surfaced by the test, not lost in the thread
        errors.append(err)
    finally:
        done.set()


@pytest.mark.usefixtures("moto_at_scale")
def test_ten_thousand_jobs_complete_once_each_within_the_connection_budget(
    pg_url: str, pg_db: DB, fast_queues: tuple[Queue, Queue], calls: Calls, run_local: Any, record: Any
) -> None:
    """10,000 jobs through 8 concurrent invocations in batches of 10 all complete, no handler runs twice, and
    the workers never hold more database connections than the concurrency plus the runner's own.

    Published by a concurrent feeder in waves of 500 (see WAVE) while the workers run; one message in 20 is
    sent twice, so the duplicate guard works under load too."""
    queue, dlq = fast_queues
    pg_db.dispose()  # only the workers' connections carry application_name "jobstack" during the run
    feeder_db = create_db(pg_url, application_name="load-feeder")
    fed, errors = threading.Event(), list[BaseException]()
    feeder = threading.Thread(target=feed, args=(feeder_db, queue, fed, errors), name="feeder", daemon=True)
    totals: collections.Counter[str] = collections.Counter()
    started = time.perf_counter()
    with ConnectionWatch(pg_url) as watch:
        feeder.start()
        while True:  # the runner exits when the queue is empty; between waves it may be, briefly
            stats = run_local(
                fast_queues,
                pg_url,
                *("--concurrency", str(CONCURRENCY), "--batch-size", "10", "--timeout", "20", "--stale-after", "30"),
            )
            totals.update(stats)
            print("RUN", stats, round(time.perf_counter() - started, 1), flush=True)
            if (fed.is_set() and _pending(feeder_db) == 0) or time.perf_counter() - started > GIVE_UP_SECONDS:
                break
            time.sleep(0.05)
    elapsed = time.perf_counter() - started
    feeder.join()
    assert not errors, errors

    counts = _status_counts(feeder_db)
    feeder_db.dispose()
    assert counts == {JobStatus.COMPLETED.value: TOTAL}
    runs = collections.Counter(r["job_id"] for r in calls.runs)
    assert len(runs) == TOTAL, "every job's handler ran"
    assert max(runs.values()) == 1, "no handler ran twice"
    assert drain(dlq) == []
    duplicates = TOTAL // DUPLICATE_EVERY
    assert totals["records"] >= TOTAL + duplicates, "every copy was delivered"
    assert watch.samples > 100, "the watch sampled throughout the run"
    assert 1 <= watch.peak <= CONCURRENCY + 1
    record("jobs", f"{TOTAL:,}")
    record("duplicate copies sent", f"{duplicates:,}")
    record("handler runs", f"{sum(runs.values()):,}")
    record("completed", f"{counts[JobStatus.COMPLETED.value]:,}")
    record(f"peak worker connections (≤ {CONCURRENCY + 1})", "yes" if watch.peak <= CONCURRENCY + 1 else "no")
    print(
        f"\nload: {TOTAL} jobs in {elapsed:.1f} s ({TOTAL / elapsed:.0f} jobs/s), {totals['invocations']} invocations,"
        f" {totals['records'] - TOTAL} duplicate deliveries, peak {watch.peak} connections, {watch.samples} samples"
    )


def _status_counts(db: DB) -> dict[str, int]:
    with db.begin() as conn:
        rows = conn.execute(select(jobs_table.c.status, func.count()).group_by(jobs_table.c.status)).all()
    return {status: count for status, count in rows}


def _pending(db: DB) -> int:
    return sum(n for status, n in _status_counts(db).items() if status != JobStatus.COMPLETED.value)
