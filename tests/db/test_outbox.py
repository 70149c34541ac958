"""Enqueue in the caller's transaction (db/outbox.py), against real PostgreSQL and moto: the job row and
the caller's own row commit together; a rollback sends nothing; a commit sends exactly one message; a
process that dies between its commit and the send loses nothing (the sweeper sends the job)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from db import (
    DB,
    IdempotencyConflict,
    JobStatus,
    Queue,
    UnknownJobType,
    enqueue,
    enqueue_many,
    get_job,
    normalise_url,
    send,
    utcnow,
)
from db.publishing import JobRequest
from tests.support.esm import FakeLambdaContext, acknowledge, drain, receive_event
from worker.batch import process_batch
from worker.runtime import Runtime
from worker.sweeper import sweep

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(pg_url: str, pg_db: DB) -> Iterator[Engine]:
    """The web app's own engine and its own table, beside jobstack's."""
    engine = create_engine(make_url(pg_url).set(drivername="postgresql+psycopg"))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS app_users (id uuid PRIMARY KEY, email text NOT NULL)"))
        conn.execute(text("TRUNCATE app_users"))
    yield engine
    engine.dispose()


def _add_user(conn: Any, email: str) -> uuid.UUID:
    user_id = uuid.uuid4()
    conn.execute(text("INSERT INTO app_users (id, email) VALUES (:id, :email)"), {"id": user_id, "email": email})
    return user_id


def _users(pg_db: DB) -> list[str]:
    with pg_db.begin() as conn:
        return [r[0] for r in conn.execute(text("SELECT email FROM app_users ORDER BY email"))]


def _job_ids(messages: list[dict[str, Any]]) -> list[str]:
    return [json.loads(m["Body"])["jobId"] for m in messages]


def test_a_session_sends_after_its_commit_and_nothing_after_a_rollback(engine: Engine, pg_db: DB, queue: Queue) -> None:
    with Session(engine) as session:
        _add_user(session, "ann@example.com")
        job = enqueue(session, "test-echo", {"welcome": "ann"}, queue=queue)
        assert drain(queue) == [], "nothing is sent before the commit"
        assert get_job(pg_db, job.id) is None, "the row is not visible outside the transaction"
        session.rollback()
    assert drain(queue) == [] and get_job(pg_db, job.id) is None and _users(pg_db) == []

    with Session(engine) as session:
        _add_user(session, "bob@example.com")
        job = enqueue(session, "test-echo", {"welcome": "bob"}, queue=queue)
        session.commit()
    assert _job_ids(drain(queue)) == [str(job.id)]
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.PENDING and row.sent_at is not None
    assert _users(pg_db) == ["bob@example.com"]


def test_a_session_on_a_pool_of_one_connection_sends_after_its_commit(pg_url: str, pg_db: DB, queue: Queue) -> None:
    """The send needs a connection of the pool: it waits for the session to give its own back (the
    transaction's end), so a pool that every committing request holds does not starve it (before: ConnectionBusy
    after the pool's timeout, on a busy app's every commit)."""
    small = create_engine(normalise_url(pg_url), pool_size=1, max_overflow=0, pool_timeout=2)
    try:
        with Session(small) as session:
            job = enqueue(session, "test-echo", {"welcome": "cy"}, queue=queue)
            session.commit()
    finally:
        small.dispose()
    assert _job_ids(drain(queue)) == [str(job.id)]
    row = get_job(pg_db, job.id)
    assert row is not None and row.sent_at is not None


def test_a_connection_enqueues_then_sends_after_the_callers_commit(engine: Engine, pg_db: DB, queue: Queue) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        _add_user(conn, "cy@example.com")
        enqueue(conn, "test-echo", {"welcome": "cy"})
        raise RuntimeError("the request failed")  # rolls back: nothing to send
    assert _users(pg_db) == []

    with engine.begin() as conn:
        _add_user(conn, "di@example.com")
        jobs = enqueue_many(conn, [JobRequest("test-echo", {"n": n}) for n in range(3)])
    sent = send(jobs, queue=queue, db=pg_db)
    assert sorted(_job_ids(drain(queue))) == sorted(str(j.id) for j in jobs)
    assert all(j.sent_at is not None for j in sent)
    assert all(get_job(pg_db, j.id).sent_at is not None for j in jobs)  # type: ignore[union-attr]


def test_a_psycopg_connection_as_django_holds_it(pg_url: str, pg_db: DB, engine: Engine, queue: Queue) -> None:
    """Django 4.2+ runs on psycopg 3: `enqueue(connection.connection, ...)` then `send` from on_commit."""
    dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=False) as conn:
        conn.execute("INSERT INTO app_users (id, email) VALUES (%s, %s)", (uuid.uuid4(), "ed@example.com"))
        enqueue(conn, "test-echo", {"welcome": "ed"})
        conn.rollback()
        assert _users(pg_db) == []
        conn.execute("INSERT INTO app_users (id, email) VALUES (%s, %s)", (uuid.uuid4(), "fay@example.com"))
        job = enqueue(conn, "test-echo", {"welcome": "fay"}, idempotency_key="welcome-fay")
        again = enqueue(conn, "test-echo", {"welcome": "fay"}, idempotency_key="welcome-fay")
        conn.commit()
    assert again.id == job.id
    send([job], queue=queue, db=pg_db)
    assert _job_ids(drain(queue)) == [str(job.id)]
    row = get_job(pg_db, job.id)
    assert row is not None and row.payload == {"welcome": "fay"} and row.idempotency_key == "welcome-fay"


def test_the_rules_are_publishes(engine: Engine, pg_db: DB, queue: Queue) -> None:
    with Session(engine) as session:
        first = enqueue(session, "test-echo", {"n": 1}, idempotency_key="k", queue=queue)
        session.commit()
    drain(queue)
    with Session(engine) as session:
        assert enqueue(session, "test-echo", {"n": 1}, idempotency_key="k", queue=queue).id == first.id
        with pytest.raises(IdempotencyConflict):
            enqueue(session, "test-echo", {"n": 2}, idempotency_key="k", queue=queue)
    with Session(engine) as session:
        _add_user(session, "gil@example.com")
        with pytest.raises(UnknownJobType):
            enqueue(session, "no-such-type", {}, queue=queue)
        session.commit()  # the caller's work stands; nothing of jobstack's was written
    assert _users(pg_db) == ["gil@example.com"] and drain(queue) == []


CHILD = """
import os, signal, sys
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
import db.after_commit
from db import Queue, enqueue

db.after_commit.send = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)  # dies after COMMIT, before send
engine = create_engine(sys.argv[1])
with Session(engine) as session:
    session.execute(text("INSERT INTO app_users (id, email) VALUES (gen_random_uuid(), 'hal@example.com')"))
    job = enqueue(session, "test-echo", {"welcome": "hal"}, queue=Queue(client=None, url="https://sqs.invalid/q"))
    print(job.id, flush=True)
    session.commit()
print("not reached", flush=True)
"""


def test_a_process_killed_between_commit_and_send_loses_nothing(
    engine: Engine, pg_db: DB, queue: Queue, runtime: Runtime
) -> None:
    """The outbox relay: the row is committed and unsent; the sweeper sends it after its unsent window,
    and the worker completes it."""
    child = subprocess.run(
        [sys.executable, "-c", CHILD, engine.url.render_as_string(hide_password=False)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert child.returncode == -9, child.stderr
    job_id = uuid.UUID(child.stdout.split()[0])
    assert "not reached" not in child.stdout
    row = get_job(pg_db, job_id)
    assert row is not None and row.status is JobStatus.PENDING and row.sent_at is None
    assert _users(pg_db) == ["hal@example.com"] and drain(queue) == []

    later = utcnow() + runtime.config.resend_windows().unsent_after + timedelta(seconds=1)
    assert sweep(runtime, now=later).resent == {"pending": [job_id]}
    event = receive_event(queue)
    acknowledge(queue, event, process_batch(event, FakeLambdaContext(), runtime))
    row = get_job(pg_db, job_id)
    assert row is not None and row.status is JobStatus.COMPLETED


def test_enqueued_jobs_run_later_like_published_ones(engine: Engine, pg_db: DB, queue: Queue) -> None:
    """Within 15 minutes the message waits in SQS (DelaySeconds); beyond, the row is scheduled and nothing is
    sent until the sweeper releases it."""
    delays: list[int] = []

    class Recording:
        def send_message_batch(self, **kwargs: Any) -> Any:
            delays.extend(entry.get("DelaySeconds", 0) for entry in kwargs["Entries"])
            return queue.client.send_message_batch(**kwargs)

    soon, later = utcnow() + timedelta(minutes=10), utcnow() + timedelta(days=3)
    with engine.begin() as conn:
        jobs = enqueue_many(
            conn, [JobRequest("test-echo", {"n": 1}, run_at=soon), JobRequest("test-echo", {}, run_at=later)]
        )
    send(jobs, queue=Queue(Recording(), queue.url), db=pg_db)
    assert len(delays) == 1 and 590 <= delays[0] <= 600
    assert get_job(pg_db, jobs[1].id).status is JobStatus.SCHEDULED  # type: ignore[union-attr]
