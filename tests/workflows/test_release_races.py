"""The callback is released exactly once, decided by the database: members finishing at the same instant on
separate connections, through each completion statement the worker uses; and the dependents' settling on
both databases."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import text

from db import DB, ClaimPlan, Job, JobRequest, JobStatus, Queue, claim_job, get_job
from db.dependencies import settle
from db.lifecycle import complete_many, fail_job, finish_job
from db.workflows import publish_group
from tests.support.factories import insert_job
from tests.support.workflows import Seen

pytestmark = pytest.mark.integration
STALE = timedelta(minutes=5)
MEMBERS = 16


def _claimed_group(db: DB, queue: Queue) -> tuple[list[tuple[UUID, int]], UUID]:
    group = publish_group(
        db, [JobRequest("wf-member", {"n": n}) for n in range(MEMBERS)], then=JobRequest("wf-callback", {}), queue=queue
    )
    assert group.then is not None
    held = []
    for job in group.jobs:
        claim = claim_job(db, job.id, stale_after=STALE)
        assert claim.job is not None
        held.append((job.id, claim.job.attempts))
    return held, group.then.id


def _at_once(work: list[Callable[[], tuple[UUID, ...]]]) -> list[UUID]:
    """Run every callable at the same instant (a barrier), each on its own thread; every id they released."""
    barrier = threading.Barrier(len(work))
    released: list[UUID] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(call: Callable[[], tuple[UUID, ...]]) -> None:
        try:
            barrier.wait()
            got = call()
            with lock:
                released.extend(got)
        except BaseException as err:  # reported below, not lost in a thread
            errors.append(err)

    threads = [threading.Thread(target=run, args=(call,)) for call in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return released


@pytest.mark.parametrize("statement", ["finish_job", "complete_and_claim", "complete_many"])
@pytest.mark.parametrize("dependents", [True, False], ids=["settling statement", "lean statement"])
def test_members_finishing_at_the_same_instant_release_the_callback_once(
    pg_url: str, pg_db: DB, queue: Queue, seen: Seen, statement: str, dependents: bool
) -> None:
    """Sixteen members completed at once by sixteen connections: PostgreSQL serialises their decrements on
    the callback's row, and exactly one statement sees the count reach zero. Repeated five times, with the
    statement a worker uses for a member (settling) and the lean one (a job that gained its dependent after
    its claim), which settles in a second statement."""
    from db import create_db

    db = create_db(pg_url, pool_size=MEMBERS)
    try:
        for _ in range(5):
            held, callback = _claimed_group(pg_db, queue)
            others = [insert_job(pg_db, type="wf-member") for _ in held]  # for complete_and_claim to claim

            def work(index: int, done: tuple[UUID, int], others: list[Job] = others) -> Callable[[], tuple[UUID, ...]]:
                if statement == "finish_job":
                    return lambda: finish_job(db, done[0], attempt=done[1], dependents=dependents).released
                if statement == "complete_and_claim":
                    return lambda: (
                        ClaimPlan("wf-member", STALE).complete_and_claim(db, done, others[index].id)[0].released
                    )
                return lambda: complete_many(db, [done], dependents=dependents).released

            released = _at_once([work(i, done) for i, done in enumerate(held)])
            assert released == [callback]
            row = get_job(pg_db, callback)
            assert row is not None and row.status is JobStatus.PENDING and row.waiting_on == 0
            with pg_db.begin() as conn:
                unsettled = "SELECT count(*) FROM job_dependencies WHERE job_id = :id AND settled_at IS NULL"
                assert conn.execute(text(unsettled), {"id": callback}).scalar_one() == 0
    finally:
        db.dispose()


def test_a_failure_and_the_last_success_at_the_same_instant_settle_once(
    pg_url: str, pg_db: DB, queue: Queue, seen: Seen
) -> None:
    """One member fails for good while the others complete, all at once: the callback (policy "cancel") ends
    cancelled, never pending, whatever the order the database serialised them in."""
    from db import create_db

    db = create_db(pg_url, pool_size=MEMBERS)
    try:
        held, callback = _claimed_group(pg_db, queue)
        failing, rest = held[0], held[1:]

        def fail() -> tuple[UUID, ...]:
            with pg_db.begin() as conn:
                conn.execute(text("UPDATE background_jobs SET max_attempts = 1 WHERE id = :id"), {"id": failing[0]})
            fail_job(db, failing[0], "boom", attempt=failing[1])
            return tuple(settle(db, [failing[0]]).released)

        released = _at_once([fail, *(lambda d=d: finish_job(db, d[0], attempt=d[1]).released for d in rest)])
        assert released == []
        row = get_job(pg_db, callback)
        assert row is not None and row.status is JobStatus.CANCELLED
    finally:
        db.dispose()


def test_settling_on_both_databases(any_db: DB, queue: Queue, seen: Seen) -> None:
    """SQLite (local runs) settles in its own transaction, with the same results as PostgreSQL's statements."""
    group = publish_group(
        any_db, [JobRequest("wf-member", {"n": n}) for n in range(3)], then=JobRequest("wf-callback", {}), queue=queue
    )
    assert group.then is not None
    for index, job in enumerate(group.jobs):
        claim = claim_job(any_db, job.id, stale_after=STALE)
        assert claim.job is not None
        finished = finish_job(any_db, job.id, attempt=claim.job.attempts, result=f'{{"i": {index}}}')
        assert finished.completed
        assert finished.released == ((group.then.id,) if index == 2 else ())
    members = [get_job(any_db, j.id) for j in group.jobs]
    assert [m.result for m in members if m is not None] == [{"i": 0}, {"i": 1}, {"i": 2}]
    callback = get_job(any_db, group.then.id)
    assert callback is not None and callback.status is JobStatus.PENDING and callback.waiting_on == 0
