"""Publishing from async code (FastAPI, Starlette, aiohttp, async Django views): the same outbox and the same
rules as db/outbox.py and db/publishing.py, awaited, so a request handler never blocks its event loop.

- `await enqueue_async(session, ...)` on SQLAlchemy's `AsyncSession` writes the job in the session's
  transaction; `await session.commit()` then sends its message before it returns (on a thread, awaited: the
  loop serves other requests meanwhile), and a rollback sends nothing, as a Session does.
- On SQLAlchemy's `AsyncConnection` or psycopg's `AsyncConnection`: the row in your transaction; after your
  commit, `await send_async(jobs, queue=...)`, as with their sync forms.
- `await publish_async(db, ...)` / `publish_many_async`: `publish()` in its own transaction, on a thread.

SQS is called through boto3 on a thread rather than through aioboto3. Measured (bench/async_publish.py,
docs/benchmarks.md "async publish"): the thread keeps the loop free, its hop costs a fraction of a millisecond
beside SQS's round trip, and aioboto3 would pin its own botocore range against the boto3 this package
declares. A crash between the commit and the send leaves the row unsent, and the sweeper sends it, as always.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Iterable
from typing import Any, Unpack

from . import tenant_quota
from .after_commit import send
from .clock import utcnow
from .destinations import ANY_QUEUE, Destination
from .engine import DB
from .models import Job
from .outbox import EXISTING_SQL, enqueue_many, existing_job, psycopg_insert, psycopg_params
from .preparation import JobOptions, JobRequest, check_keys_within, prepare_all, request_of
from .publishing import publish, publish_many
from .tenant_quota import quota_groups


async def enqueue_async(
    conn: Any, type: str, payload: dict[str, Any], *, queue: Destination | None = None, **options: Unpack[JobOptions]
) -> Job:
    """`enqueue` awaited: one job in the caller's open transaction (see `enqueue_many_async`)."""
    return (await enqueue_many_async(conn, [request_of(type, payload, options, now=utcnow())], queue=queue))[0]


async def enqueue_many_async(conn: Any, items: Iterable[JobRequest], *, queue: Destination | None = None) -> list[Job]:
    """Write jobs in the caller's open transaction: `conn` is a SQLAlchemy AsyncSession (with `queue`, their
    messages go when it commits), a SQLAlchemy AsyncConnection or a psycopg AsyncConnection (send them with
    `send_async` after your commit). Refuses what `enqueue_many` refuses, in one line, writing nothing."""
    requests = list(items)
    asyncio_ext = sys.modules.get("sqlalchemy.ext.asyncio")
    if asyncio_ext is not None and isinstance(conn, asyncio_ext.AsyncSession | asyncio_ext.AsyncConnection):
        # The sync outbox, run in SQLAlchemy's greenlet on the caller's async driver: one code path, one set of
        # rules; an AsyncSession's sync Session carries the after-commit send (db/after_commit.py).
        jobs: list[Job] = await conn.run_sync(_enqueue_on, requests, queue)
        return jobs
    if type(conn).__module__.startswith("psycopg") and hasattr(conn, "cursor"):
        return await _write_psycopg_async(conn, requests)
    raise TypeError(
        f"enqueue_async takes a SQLAlchemy AsyncSession or AsyncConnection, or a psycopg AsyncConnection, "
        f"not {type(conn).__name__}: for a sync one, use enqueue"
    )


def _enqueue_on(sync: Any, requests: list[JobRequest], queue: Destination | None) -> list[Job]:
    return enqueue_many(sync, requests, queue=queue)


async def _write_psycopg_async(conn: Any, requests: list[JobRequest]) -> list[Job]:
    """`enqueue_many` on a psycopg AsyncConnection: the same INSERT, `prepare=False` (a pooler in transaction
    mode), no dependencies (`after=` needs a SQLAlchemy connection, as in the sync form)."""
    if any(r.after or r.on_failure is not None for r in requests):
        raise ValueError("after= and on_failure= need a SQLAlchemy AsyncSession or AsyncConnection")
    prepared = prepare_all(requests, ANY_QUEUE, now=utcnow(), own_error_for_one=True)
    if not prepared:
        return []
    check_keys_within(prepared)
    compiled = psycopg_insert(prepared)
    inserted = set()
    quotas = quota_groups(prepared)
    async with conn.cursor() as cur:
        await tenant_quota.lock_psycopg_async(cur, quotas)
        for p in prepared:
            await cur.execute(compiled.string, psycopg_params(compiled, p), prepare=False)
            row = await cur.fetchone()
            if row is not None:
                inserted.add(row[0])
        await tenant_quota.enforce_psycopg_async(cur, quotas, inserted)
        jobs = []
        for p in prepared:
            if p.message.job_id in inserted:
                jobs.append(p.job())
                continue
            await cur.execute(EXISTING_SQL, (p.row["type"], p.row["idempotency_key"]), prepare=False)
            jobs.append(existing_job(cur.description, await cur.fetchone(), p))
    return jobs


async def send_async(jobs: list[Job], *, queue: Destination, db: DB | None = None) -> list[Job]:
    """`send` awaited, after your commit: SQS (and, with `db`, the mark that they were sent) on a thread."""
    return await asyncio.to_thread(functools.partial(send, jobs, queue=queue, db=db))


async def publish_async(
    db: DB, type: str, payload: dict[str, Any], *, queue: Destination, **options: Unpack[JobOptions]
) -> Job:
    """`publish` awaited: the row committed, then the message sent, on a thread."""
    return await asyncio.to_thread(functools.partial(publish, db, type, payload, queue=queue, **options))


async def publish_many_async(db: DB, items: Iterable[JobRequest], *, queue: Destination) -> list[Job]:
    """`publish_many` awaited, on a thread."""
    return await asyncio.to_thread(functools.partial(publish_many, db, list(items), queue=queue))
