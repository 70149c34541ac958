"""The pending quota per tenant (db/tenant_quota.py): a type's `max_pending_per_tenant` holds on every way in,
refuses in one line naming the limit, and leaves nothing of the refused call, even when the caller commits its
own transaction; an idempotent retry at the quota is no new job; concurrent publishers never pass it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db import (
    DB,
    JobRequest,
    Queue,
    TenantQuotaExceeded,
    claim_job,
    enqueue,
    enqueue_async,
    enqueue_many,
    publish,
    publish_many,
)
from db.models import jobs_table
from db.workflows import publish_group
from tests.support.worker_support import job_type_for_test

pytestmark = pytest.mark.integration
QUOTA = 3


class Row(BaseModel):
    n: int = 0


@pytest.fixture
def quota() -> Iterator[None]:
    """`import.rows`: at most 3 jobs of one tenant waiting to start."""
    with job_type_for_test("import.rows", Row, print, max_attempts=3, max_pending_per_tenant=QUOTA):
        yield


def _count(db: DB, tenant: str | None = "acme") -> int:
    t = jobs_table
    with db.begin() as conn:
        query = select(func.count()).select_from(t)
        query = query.where(t.c.tenant == tenant) if tenant is not None else query.where(t.c.tenant.is_(None))
        return int(conn.execute(query).scalar_one())


def _fill(db: DB, queue: Queue) -> list[Any]:
    return [publish(db, "import.rows", {"n": n}, queue=queue, tenant="acme") for n in range(QUOTA)]


def test_publish_past_the_quota_is_one_line_and_writes_nothing(any_db: DB, queue: Queue, quota: None) -> None:
    jobs = _fill(any_db, queue)
    with pytest.raises(TenantQuotaExceeded) as refused:
        publish(any_db, "import.rows", {"n": 9}, queue=queue, tenant="acme")
    assert str(refused.value) == (
        "tenant 'acme' has 3 jobs of type 'import.rows' waiting to start and this call adds 1, over its "
        "max_pending_per_tenant of 3: nothing was written; publish again once some have started, or raise the "
        "limit where the type is registered"
    )
    assert "\n" not in str(refused.value) and _count(any_db) == QUOTA
    publish(any_db, "import.rows", {"n": 9}, queue=queue, tenant="globex")  # another tenant's own quota
    publish(any_db, "import.rows", {"n": 9}, queue=queue)  # a job without a tenant has none
    assert _count(any_db, "globex") == 1 and _count(any_db, None) == 1
    claim_job(any_db, jobs[0].id, stale_after=timedelta(minutes=5))  # one started
    publish(any_db, "import.rows", {"n": 10}, queue=queue, tenant="acme")
    assert _count(any_db) == QUOTA + 1


def test_an_idempotent_retry_at_the_quota_returns_its_job(any_db: DB, queue: Queue, quota: None) -> None:
    first = publish(any_db, "import.rows", {"n": 0}, queue=queue, tenant="acme", idempotency_key="order-1")
    publish_many(any_db, [JobRequest("import.rows", {"n": n}, tenant="acme") for n in (1, 2)], queue=queue)
    again = publish(any_db, "import.rows", {"n": 0}, queue=queue, tenant="acme", idempotency_key="order-1")
    assert again.id == first.id and _count(any_db) == QUOTA


def test_publish_many_past_the_quota_is_refused_whole(any_db: DB, queue: Queue, quota: None) -> None:
    requests = [JobRequest("test-echo", {}, tenant="acme")]
    requests += [JobRequest("import.rows", {"n": n}, tenant="acme") for n in range(QUOTA + 1)]
    with pytest.raises(TenantQuotaExceeded, match=r"has 0 jobs .* this call adds 4, over its max_pending_per_tenant"):
        publish_many(any_db, requests, queue=queue)
    assert _count(any_db) == 0, "its other type's row is not written either"


def test_a_workflow_past_the_quota_writes_nothing(any_db: DB, queue: Queue, quota: None) -> None:
    _fill(any_db, queue)
    with pytest.raises(TenantQuotaExceeded):
        publish_group(any_db, [JobRequest("import.rows", {"n": 7}, tenant="acme")], queue=queue)
    assert _count(any_db) == QUOTA


def test_enqueue_in_a_transaction_the_caller_commits_leaves_nothing(any_db: DB, queue: Queue, quota: None) -> None:
    """The web app catches the error and commits its own work: the refused call's rows are gone all the same,
    and the caller's own row stays."""
    _fill(any_db, queue)
    with Session(any_db.engine) as session:
        kept = enqueue(session, "test-echo", {}, queue=queue, tenant="acme")
        with pytest.raises(TenantQuotaExceeded):
            enqueue_many(
                session, [JobRequest("test-echo", {}, tenant="acme"), JobRequest("import.rows", {}, tenant="acme")]
            )
        session.commit()
    assert _count(any_db) == QUOTA + 1
    with any_db.begin() as conn:
        echoes = conn.execute(select(jobs_table.c.id).where(jobs_table.c.type == "test-echo")).scalars().all()
    assert echoes == [kept.id]


def test_enqueue_on_psycopg_connections_holds_the_quota(pg_url: str, pg_db: DB, queue: Queue, quota: None) -> None:
    import psycopg

    _fill(pg_db, queue)
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        with pytest.raises(TenantQuotaExceeded):
            enqueue(conn, "import.rows", {}, tenant="acme")
        conn.commit()

    async def refused_async() -> None:
        async with await psycopg.AsyncConnection.connect(dsn) as aconn:
            with pytest.raises(TenantQuotaExceeded):
                await enqueue_async(aconn, "import.rows", {}, tenant="acme")
            await aconn.commit()

    asyncio.run(refused_async())
    with psycopg.connect(dsn, autocommit=True) as conn:  # autocommit: the insert commits, then is taken back
        with pytest.raises(TenantQuotaExceeded):
            enqueue(conn, "import.rows", {}, tenant="acme")
        enqueue(conn, "import.rows", {}, tenant="globex")
    assert _count(pg_db) == QUOTA and _count(pg_db, "globex") == 1


def test_concurrent_publishers_never_pass_the_quota(pg_db: DB, queue: Queue) -> None:
    """8 threads, each with its own connections, publish 10 jobs each for one tenant with a quota of 25: 25
    are written, 55 refused, none lost between them."""
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def publisher(i: int) -> None:
        start.wait()
        for n in range(10):
            try:
                publish(pg_db, "bulk.rows", {"n": i * 100 + n}, queue=queue, tenant="acme")
                result = "written"
            except TenantQuotaExceeded:
                result = "refused"
            with lock:
                outcomes.append(result)

    with job_type_for_test("bulk.rows", Row, print, max_attempts=3, max_pending_per_tenant=25):
        threads = [threading.Thread(target=publisher, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert outcomes.count("written") == 25 and outcomes.count("refused") == 55
    assert _count(pg_db) == 25


def test_a_quota_below_one_is_refused_where_the_type_is_registered() -> None:
    refused = pytest.raises(ValueError, match=r"^max_pending_per_tenant for job type 'x' must be at least 1, got 0$")
    with refused, job_type_for_test("x", Row, print, max_attempts=1, max_pending_per_tenant=0):
        pass


def test_the_quota_counts_scheduled_jobs_and_a_unique_keys_waiting_job_is_no_new_one(
    any_db: DB, queue: Queue, quota: None
) -> None:
    """Crossings on the backlog's rows: a job scheduled past SQS's 15 minutes waits to start too, and counts; a
    publish whose unique key names a job not started yet returns that job (no row is written, so none is
    refused), at the quota as below it."""
    waiting = publish(any_db, "import.rows", {"n": 0}, queue=queue, tenant="acme", unique_key="sync:acme")
    publish(any_db, "import.rows", {"n": 1}, queue=queue, tenant="acme", delay=timedelta(hours=2))
    publish(any_db, "import.rows", {"n": 2}, queue=queue, tenant="acme")
    again = publish(any_db, "import.rows", {"n": 0}, queue=queue, tenant="acme", unique_key="sync:acme")
    assert again.id == waiting.id and _count(any_db) == QUOTA
    with pytest.raises(TenantQuotaExceeded, match="has 3 jobs"):
        publish(any_db, "import.rows", {"n": 3}, queue=queue, tenant="acme", delay=timedelta(hours=2))
    assert _count(any_db) == QUOTA
