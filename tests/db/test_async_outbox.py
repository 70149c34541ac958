"""Publishing from async code (db/async_outbox.py), on both databases through SQLAlchemy's async engines and on
psycopg's own AsyncConnection: the row in the caller's transaction, the message only after its commit, none
after a rollback; a refusal in one line with nothing written; the event loop free while SQS is called."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from db import (
    DB,
    InvalidPayload,
    JobRequest,
    JobStatus,
    Queue,
    async_url,
    enqueue_async,
    get_job,
    list_jobs,
    publish_async,
    publish_many_async,
    send_async,
)
from tests.support.esm import drain, receive_event

pytestmark = pytest.mark.integration


def _async_engine(db: DB) -> AsyncEngine:
    """The test's database through the async driver a FastAPI app would use."""
    return create_async_engine(async_url(db.engine.url.render_as_string(hide_password=False)))


def _run(db: DB, body: Callable[[AsyncEngine], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        engine = _async_engine(db)
        try:
            return await body(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _messages(queue: Queue) -> list[str]:
    return [r["body"] for r in receive_event(queue)["Records"]]


def test_an_async_session_sends_after_its_commit_and_nothing_after_a_rollback(any_db: DB, queue: Queue) -> None:
    async def body(engine: AsyncEngine) -> tuple[Any, Any]:
        async with AsyncSession(engine) as session:
            kept = await enqueue_async(session, "test-echo", {"n": 1}, queue=queue)
            assert _messages(queue) == [], "nothing is sent before the commit"
            await session.commit()
        async with AsyncSession(engine) as session:
            dropped = await enqueue_async(session, "test-echo", {"n": 2}, queue=queue)
            await session.rollback()
        return kept, dropped

    kept, dropped = _run(any_db, body)
    [message] = _messages(queue)
    assert str(kept.id) in message
    row = get_job(any_db, kept.id)
    assert row is not None and row.status is JobStatus.PENDING and row.sent_at is not None, "marked sent"
    assert get_job(any_db, dropped.id) is None


def test_a_payload_the_schema_refuses_is_one_line_and_writes_nothing(any_db: DB, queue: Queue) -> None:
    async def body(engine: AsyncEngine) -> str:
        async with AsyncSession(engine) as session:
            with pytest.raises(InvalidPayload) as refused:
                await enqueue_async(session, "welcome-email", {"email": "nope"}, queue=queue)
            await session.commit()
        return str(refused.value)

    said = _run(any_db, body)
    assert said.startswith("invalid payload for job type 'welcome-email': email: ") and "\n" not in said
    assert list_jobs(any_db) == [] and _messages(queue) == []


def test_a_job_that_waits_for_another_is_written_in_the_same_async_transaction(any_db: DB, queue: Queue) -> None:
    """The crossing with workflows: `after=` on an AsyncSession. The first is sent at the commit, the second
    waits for it, unsent."""

    async def body(engine: AsyncEngine) -> tuple[Any, Any]:
        async with AsyncSession(engine) as session:
            first = await enqueue_async(session, "test-echo", {"step": 1}, queue=queue)
            then = await enqueue_async(session, "test-echo", {"step": 2}, queue=queue, after=[first.id])
            await session.commit()
        return first, then

    first, then = _run(any_db, body)
    [message] = _messages(queue)
    assert str(first.id) in message
    waiting = get_job(any_db, then.id)
    assert waiting is not None and waiting.status is JobStatus.WAITING and waiting.sent_at is None


def test_an_async_connection_writes_and_send_async_sends_after_the_commit(any_db: DB, queue: Queue) -> None:
    async def body(engine: AsyncEngine) -> Any:
        async with engine.connect() as conn:
            job = await enqueue_async(conn, "test-echo", {"n": 3})
            await conn.commit()
        return await send_async([job], queue=queue, db=any_db)

    [sent] = _run(any_db, body)
    assert sent.sent_at is not None and str(sent.id) in _messages(queue)[0]
    row = get_job(any_db, sent.id)
    assert row is not None and row.sent_at is not None


def test_a_psycopg_async_connection_holds_the_row_in_its_transaction(pg_db: DB, pg_url: str, queue: Queue) -> None:
    async def main() -> tuple[Any, Any]:
        conninfo = pg_url.replace("postgresql+psycopg://", "postgresql://")
        async with await psycopg.AsyncConnection.connect(conninfo) as conn:
            kept = await enqueue_async(conn, "test-echo", {"n": 4})
            again = await enqueue_async(conn, "test-echo", {"n": 4}, idempotency_key="order-9")
            same = await enqueue_async(conn, "test-echo", {"n": 4}, idempotency_key="order-9")
            assert same.id == again.id, "a key seen in this transaction returns its job"
            await conn.commit()
            dropped = await enqueue_async(conn, "test-echo", {"n": 5})
            await conn.rollback()
        await send_async([kept], queue=queue, db=pg_db)
        return kept, dropped

    kept, dropped = asyncio.run(main())
    assert get_job(pg_db, dropped.id) is None
    assert str(kept.id) in _messages(queue)[0]


def test_the_event_loop_serves_other_work_while_the_commit_sends(pg_db: DB, queue: Queue) -> None:
    """SQS is called on a thread: a task beside the commit keeps running while a slow SQS answers, and the
    commit returns only once the message is out (as a sync Session's commit does)."""
    slow = Queue(client=_SlowSqs(queue.client, seconds=0.3), url=queue.url)

    async def body(engine: AsyncEngine) -> tuple[int, float]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        async with AsyncSession(engine) as session:
            await enqueue_async(session, "test-echo", {"n": 6}, queue=slow)
            beside = asyncio.create_task(ticker())
            started = time.perf_counter()
            await session.commit()
            took = time.perf_counter() - started
            beside.cancel()
        return ticks, took

    ticks, took = _run(pg_db, body)
    assert took >= 0.3, "the commit waited for the send"
    assert ticks >= 10, f"the loop ran only {ticks} ticks of 10 ms during a 300 ms send: it was blocked"
    assert len(_messages(queue)) == 1


def test_publish_async_commits_then_sends(any_db: DB, queue: Queue) -> None:
    job = asyncio.run(publish_async(any_db, "test-echo", {"n": 7}, queue=queue))
    assert str(job.id) in _messages(queue)[0]
    row = get_job(any_db, job.id)
    assert row is not None and row.sent_at is not None


def test_a_sync_connection_is_refused_in_one_line(pg_db: DB) -> None:
    with pg_db.begin() as conn, pytest.raises(TypeError) as refused:
        asyncio.run(enqueue_async(conn, "test-echo", {}))
    assert str(refused.value) == (
        "enqueue_async takes a SQLAlchemy AsyncSession or AsyncConnection, or a psycopg AsyncConnection, "
        "not Connection: for a sync one, use enqueue"
    )
    with pg_db.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM background_jobs")).scalar() == 0


class _SlowSqs:
    """SQS that answers after `seconds` (a far region, a throttled account): the real client, delayed."""

    def __init__(self, client: Any, seconds: float) -> None:
        self._client, self._seconds = client, seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def send_message_batch(self, **kwargs: Any) -> Any:
        time.sleep(self._seconds)
        return self._client.send_message_batch(**kwargs)


def test_a_commit_on_a_pool_of_one_connection_sends(pg_url: str, pg_db: DB, queue: Queue) -> None:
    """The send after a commit needs a connection of the pool (which rows committed, and marking them sent):
    it waits until the session has given its own back, so a pool that every committing request holds (here,
    one connection) does not starve it (before: ConnectionBusy after the pool's timeout)."""

    async def main() -> Any:
        engine = create_async_engine(async_url(pg_url), pool_size=1, max_overflow=0, pool_timeout=2)
        try:
            async with AsyncSession(engine) as session:
                job = await enqueue_async(session, "test-echo", {"n": 8}, queue=queue)
                await session.commit()
            return job
        finally:
            await engine.dispose()

    job = asyncio.run(main())
    row = get_job(pg_db, job.id)
    assert row is not None and row.sent_at is not None and str(job.id) in _messages(queue)[0]


def test_publish_many_async_and_a_key_seen_before_in_an_async_session(any_db: DB, queue: Queue) -> None:
    """The crossings with `publish_many` (one transaction, batched sends) and idempotency keys (a key seen
    before returns its job and sends nothing more)."""
    jobs = asyncio.run(publish_many_async(any_db, [JobRequest("test-echo", {"n": n}) for n in range(12)], queue=queue))
    assert len(jobs) == 12 and sorted(json.loads(m["Body"])["jobId"] for m in drain(queue)) == sorted(
        str(j.id) for j in jobs
    )

    async def body(engine: AsyncEngine) -> tuple[Any, Any]:
        async with AsyncSession(engine) as session:
            first = await enqueue_async(session, "test-echo", {"order": 9}, queue=queue, idempotency_key="order-9")
            await session.commit()
        async with AsyncSession(engine) as session:
            again = await enqueue_async(session, "test-echo", {"order": 9}, queue=queue, idempotency_key="order-9")
            await session.commit()
        return first, again

    first, again = _run(any_db, body)
    assert again.id == first.id and len(_messages(queue)) == 1, "one job, one message"
