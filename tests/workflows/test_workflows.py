"""Groups with a callback, chains and `after=`, through the worker's batch entry (what the Lambda handler
runs) against PostgreSQL and SQLite, and moto.

Lambda's event source mapping deletes every record the response does not list as a failure
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting);
`deliver` does the same, so a released callback is only ever run from the message its release sent.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from bench.statements import count_statements
from db import DB, InvalidBatchItem, JobRequest, JobStatus, Queue, get_job, publish, utcnow
from db.dependencies import settle
from db.lifecycle import fail_job
from db.models import jobs_table
from db.queue_wait import queue_wait
from db.workflows import UnknownPrerequisite, publish_chain, publish_group
from tests.support.esm import FakeLambdaContext, acknowledge, deliver, receive_event
from tests.support.worker_support import fifo_pair, job_type_for_test
from tests.support.workflows import Seen, Step
from worker.batch import process_batch
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


@pytest.fixture
def runtime(any_runtime: Runtime) -> Runtime:
    """Every workflow test on both databases (SQLite is `make local`'s and `jobstack local`'s default), but the
    few whose means are PostgreSQL's own (a plpgsql trigger, a second writer while a transaction is open,
    the statement counts production pays through a pooler): they ask for `pg_db` and `pg_runtime`."""
    return any_runtime


def _run_all(queue: Queue, runtime: Runtime, *, rounds: int = 200) -> None:
    """Deliver until the queue is empty, as the event source mapping would."""
    for _ in range(rounds):
        event = receive_event(queue)
        if not event["Records"]:
            return
        acknowledge(queue, event, process_batch(event, FakeLambdaContext(), runtime))
    raise AssertionError("the queue never emptied")


def _status(db: DB, job_id: uuid.UUID) -> JobStatus:
    job = get_job(db, job_id)
    assert job is not None
    return job.status


def test_a_group_runs_its_callback_once_after_every_member(
    any_db: DB, queue: Queue, runtime: Runtime, seen: Seen
) -> None:
    group = publish_group(
        any_db, [JobRequest("wf-member", {"n": n}) for n in range(25)], then=JobRequest("wf-callback", {}), queue=queue
    )
    assert group.then is not None and group.then.status is JobStatus.WAITING and group.then.waiting_on == 25
    assert _visible(queue) == 25  # the callback has no message yet
    _run_all(queue, runtime)
    assert len(seen.callbacks) == 1
    outcomes = seen.callbacks[0]
    assert [o[0] for o in outcomes] == [str(j.id) for j in group.jobs]  # in the order given
    assert {o[1] for o in outcomes} == {"completed"} and outcomes[3][2] == {"n": 3}
    callback = get_job(any_db, group.then.id)
    assert callback is not None and callback.status is JobStatus.COMPLETED and callback.result == {"members": 25}
    assert callback.workflow_id == group.id and callback.send_count == 1


def _visible(queue: Queue) -> int:
    attributes = queue.client.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


@pytest.mark.parametrize("policy", ["cancel", "continue"])
def test_a_group_with_a_failed_member_follows_its_policy(
    any_db: DB, queue: Queue, runtime: Runtime, seen: Seen, policy: str
) -> None:
    """ "cancel": the callback is cancelled as soon as a member fails for good, naming it; "continue": it runs
    once every member finished, and reads the failed member's status and error."""
    members = [JobRequest("wf-member", {"n": n, "fail": n == 1}) for n in range(3)]
    group = publish_group(any_db, members, then=JobRequest("wf-callback", {}), queue=queue, on_failure=policy)
    assert group.then is not None
    _run_all(queue, runtime)
    callback = get_job(any_db, group.then.id)
    assert callback is not None
    failed = group.jobs[1]
    assert _status(any_db, failed.id) is JobStatus.FAILED
    if policy == "cancel":
        assert callback.status is JobStatus.CANCELLED and seen.callbacks == []
        assert callback.error == f"cancelled: job {failed.id}, which it waited for, ended failed"
    else:
        assert callback.status is JobStatus.COMPLETED
        assert [o[1] for o in seen.callbacks[0]] == ["completed", "failed", "completed"]
    assert sum(1 for kind, _ in seen.runs if kind == "member") == 3  # the other members ran either way


def test_a_chain_passes_results_along(any_db: DB, queue: Queue, runtime: Runtime, seen: Seen) -> None:
    """Every step runs one handler, which reads `ctx.previous_result()`: None in the first step (reported: it
    raised there, burned every attempt and cancelled the chain)."""
    chain = publish_chain(any_db, [JobRequest("wf-step", {"n": n}) for n in (1, 10, 100)], queue=queue)
    assert [j.status for j in chain.jobs] == [JobStatus.PENDING, JobStatus.WAITING, JobStatus.WAITING]
    _run_all(queue, runtime)
    assert [get_job(any_db, j.id).result for j in chain.jobs] == [  # type: ignore[union-attr]
        {"total": 1},
        {"total": 11},
        {"total": 111},
    ]
    assert [previous for kind, previous in seen.runs] == [{"total": 0}, {"total": 1}, {"total": 11}]


def test_a_chain_stops_at_a_failed_step(any_db: DB, queue: Queue, runtime: Runtime, seen: Seen) -> None:
    steps = [JobRequest("wf-step", {"n": 1}), JobRequest("wf-step", {"n": 2, "fail": True}), JobRequest("wf-step", {})]
    chain = publish_chain(any_db, steps, queue=queue)
    _run_all(queue, runtime)
    first, second, third = (get_job(any_db, j.id) for j in chain.jobs)
    assert first is not None and second is not None and third is not None
    assert (first.status, second.status, third.status) == (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
    assert third.error == f"cancelled: job {second.id}, which it waited for, ended failed"
    assert len(seen.runs) == 2


def test_after_waits_for_two_jobs(any_db: DB, queue: Queue, runtime: Runtime, seen: Seen) -> None:
    a = publish(any_db, "wf-member", {"n": 1}, queue=queue)
    b = publish(any_db, "wf-member", {"n": 2}, queue=queue)
    waiting = publish(any_db, "wf-callback", {}, queue=queue, after=[a.id, b.id])
    assert waiting.status is JobStatus.WAITING and waiting.waiting_on == 2 and waiting.sent_at is None
    event = receive_event(queue, max_messages=1)
    process_batch(event, FakeLambdaContext(), runtime)  # one of the two
    queue.client.delete_message(QueueUrl=queue.url, ReceiptHandle=event["Records"][0]["receiptHandle"])
    assert _status(any_db, waiting.id) is JobStatus.WAITING
    _run_all(queue, runtime)
    assert _status(any_db, waiting.id) is JobStatus.COMPLETED
    assert [o[0] for o in seen.callbacks[0]] == [str(a.id), str(b.id)]


def test_after_a_job_that_already_finished(any_db: DB, queue: Queue, runtime: Runtime, seen: Seen) -> None:
    """Waiting for finished jobs: pending (and sent) at once if they completed; cancelled at once if one
    failed for good and the policy cancels."""
    done = publish(any_db, "wf-member", {"n": 1}, queue=queue)
    _run_all(queue, runtime)
    assert _status(any_db, done.id) is JobStatus.COMPLETED
    follower = publish(any_db, "wf-callback", {}, queue=queue, after=[done.id])
    assert follower.status is JobStatus.PENDING and follower.sent_at is not None
    bad = publish(any_db, "wf-member", {"n": 2, "fail": True}, queue=queue)
    _run_all(queue, runtime)
    cancelled = publish(any_db, "wf-callback", {}, queue=queue, after=[bad.id])
    assert cancelled.status is JobStatus.CANCELLED and cancelled.error is not None
    kept = publish(any_db, "wf-callback", {"n": 1}, queue=queue, after=[bad.id], on_failure="continue")
    assert kept.status is JobStatus.PENDING


def test_a_transactional_handler_commits_its_writes_with_the_completion(
    any_db: DB, queue: Queue, runtime: Runtime, ledger: Any
) -> None:
    job = publish(any_db, "wf-ledger", {"n": 7}, queue=queue)
    deliver(queue, lambda e, c: process_batch(e, c, runtime))
    assert _entries(any_db) == [(str(job.id), 7)]
    row = get_job(any_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED and row.result == {"written": 7}


def test_a_transactional_handler_whose_completion_fails_leaves_none_of_its_writes(
    pg_db: DB, queue: Queue, pg_runtime: Runtime, ledger: Any
) -> None:
    """Its writes and the completion commit together or not at all: here the completion statement itself
    fails (a trigger refuses it), so the ledger row the handler wrote rolls back with it, and the job is
    retried rather than completed."""
    with pg_db.begin() as conn:
        conn.execute(text(_REFUSE_COMPLETION))
    try:
        job = publish(pg_db, "wf-ledger", {"n": 7}, queue=queue)
        _, response = deliver(queue, lambda e, c: process_batch(e, c, pg_runtime))
        assert len(response["batchItemFailures"]) == 1
        assert _entries(pg_db) == []
        row = get_job(pg_db, job.id)
        assert row is not None and row.status is JobStatus.FAILED and "completion refused" in (row.error or "")
    finally:
        with pg_db.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS refuse_completion ON background_jobs"))


def test_a_transactional_handler_whose_job_was_taken_over_leaves_none_of_its_writes(
    pg_db: DB, queue: Queue, pg_runtime: Runtime, ledger: Any
) -> None:
    """The completion's attempt fence: another invocation reclaimed the job while the handler ran (its
    attempt moved on), so this run's completion misses and its writes roll back: only one run's effects."""
    ledger.behaviour = lambda ctx: _take_over(pg_db, ctx.job_id)
    job = publish(pg_db, "wf-ledger", {"n": 7}, queue=queue)
    _, response = deliver(queue, lambda e, c: process_batch(e, c, pg_runtime))
    assert response["batchItemFailures"] == []  # the other invocation owns the job now
    assert _entries(pg_db) == []
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.PROCESSING and row.attempts == 2


def test_statements_of_a_transactional_job_against_a_plain_one(
    pg_db: DB, queue: Queue, pg_runtime: Runtime, ledger: Any
) -> None:
    """A plain job: its claim and its completion (two autocommit statements). A transactional one: the claim,
    then BEGIN, the handler's own INSERT, the completion, COMMIT: one more round trip than the handler's."""
    publish(pg_db, "test-echo", {}, queue=queue)
    with count_statements(pg_db) as plain:
        deliver(queue, lambda e, c: process_batch(e, c, pg_runtime))
    publish(pg_db, "wf-ledger", {"n": 1}, queue=queue)
    with count_statements(pg_db) as transactional:
        deliver(queue, lambda e, c: process_batch(e, c, pg_runtime))
    assert plain == {"UPDATE": 2, "(autocommit)": 2}
    assert transactional == {"UPDATE": 2, "(autocommit)": 1, "INSERT": 1, "COMMIT": 1}


def test_results_that_cannot_be_stored_fail_the_job_with_one_line(
    any_db: DB, queue: Queue, runtime: Runtime, seen: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Too large, or not JSON: the job fails (with attempts left, retried) with one line naming the limit."""
    from worker import registry

    returns = registry.RegisteredHandler("wf-member", lambda ctx: "x" * 70_000 if ctx.payload["n"] else {1, 2})
    monkeypatch.setitem(registry._handlers, "wf-member", returns)
    big = publish(any_db, "wf-member", {"n": 1}, queue=queue)
    odd = publish(any_db, "wf-member", {"n": 0}, queue=queue)
    _run_all(queue, runtime)
    big_row, odd_row = get_job(any_db, big.id), get_job(any_db, odd.id)
    assert big_row is not None and odd_row is not None
    assert big_row.status is JobStatus.FAILED and big_row.error is not None
    assert big_row.error.startswith("the handler returned a 70002-byte result; results are limited to 65536 bytes")
    assert odd_row.error is not None and odd_row.error.startswith("the handler returned a result that is not JSON")
    assert "\n" not in big_row.error + odd_row.error


def test_bad_input_is_refused_before_anything_is_written(any_db: DB, queue: Queue, seen: Seen) -> None:
    def refused(call: Any, error: type[Exception], message: str) -> None:
        with pytest.raises(error) as raised:
            call()
        assert str(raised.value) == message
        with any_db.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM background_jobs")).scalar_one() == 0

    unknown = uuid.uuid4()
    refused(
        lambda: publish(any_db, "wf-callback", {}, queue=queue, after=[unknown]),
        UnknownPrerequisite,
        f"after= names job {unknown}, which does not exist: wait only for jobs already published",
    )
    refused(
        lambda: publish_group(any_db, [JobRequest("wf-member", {})] * 10_001, queue=queue),
        ValueError,
        "a group may have at most 10000 members, got 10001: split it",
    )
    refused(
        lambda: publish_group(
            any_db, [JobRequest("wf-member", {})], then=JobRequest("wf-callback", {}), queue=queue, on_failure="retry"
        ),
        ValueError,
        "on_failure must be one of 'cancel', 'continue', got 'retry'",
    )
    refused(
        lambda: publish_group(
            any_db, [JobRequest("wf-member", {})], then=JobRequest("wf-callback", {"n": "x"}), queue=queue
        ),
        InvalidBatchItem,
        "then: invalid payload for job type 'wf-callback': n: Input should be a valid integer, unable to parse "
        "string as an integer (nothing was published)",
    )
    refused(
        lambda: publish(any_db, "wf-callback", {}, queue=queue, after=[uuid.uuid4()], run_at=utcnow()),
        ValueError,
        "a job with after= starts when those jobs finish: run_at and delays do not apply",
    )


def test_a_callback_in_a_fifo_pool_needs_an_ordering_key(any_db: DB, fifo_queue: Queue, seen: Seen) -> None:
    with pytest.raises(InvalidBatchItem) as raised:
        publish_group(
            any_db,
            [JobRequest("wf-member", {}, ordering_key="album-1")],
            then=JobRequest("wf-callback", {}),
            queue=fifo_queue,
        )
    assert str(raised.value).startswith("then: job type 'wf-callback' runs on a FIFO queue, which needs ordering_key")
    group = publish_group(
        any_db,
        [JobRequest("wf-member", {}, ordering_key="album-1")],
        then=JobRequest("wf-callback", {}, ordering_key="album-1"),
        queue=fifo_queue,
    )
    assert group.then is not None and group.then.ordering_key == "album-1"


def test_the_sweeper_settles_what_a_dead_worker_left(any_db: DB, queue: Queue, runtime: Runtime, seen: Seen) -> None:
    """A member that failed for good while its worker died before settling (fail_job without settle): the
    next sweep settles it, and the cancelled callback does not wait forever."""
    from worker.sweeper import sweep

    group = publish_group(any_db, [JobRequest("wf-member", {"n": 1})], then=JobRequest("wf-callback", {}), queue=queue)
    member = group.jobs[0]
    with any_db.begin() as conn:
        conn.execute(text("UPDATE background_jobs SET attempts = max_attempts WHERE id = :id"), {"id": member.id.hex})
    assert fail_job(any_db, member.id, "died")
    assert group.then is not None and _status(any_db, group.then.id) is JobStatus.WAITING
    report = sweep(runtime)
    assert report.settled == 1
    assert _status(any_db, group.then.id) is JobStatus.CANCELLED
    assert settle(any_db, [member.id]).cancelled == []  # settled once: a second pass changes nothing


# -- transactional handlers ---------------------------------------------------------------------------------

_REFUSE_COMPLETION = """
CREATE OR REPLACE FUNCTION refuse_completion() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'completed' AND NEW.type = 'wf-ledger' THEN
        RAISE EXCEPTION 'completion refused';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS refuse_completion ON background_jobs;
CREATE TRIGGER refuse_completion BEFORE UPDATE ON background_jobs FOR EACH ROW EXECUTE FUNCTION refuse_completion();
"""


def _entries(db: DB) -> list[tuple[str, int]]:
    with db.begin() as conn:
        return [
            (r.job_id, r.amount) for r in conn.execute(text("SELECT job_id, amount FROM wf_ledger ORDER BY amount"))
        ]


def _take_over(db: DB, job_id: uuid.UUID) -> None:
    """Another invocation reclaims the job (its attempt moves on), as after the stale window."""
    with db.begin() as conn:
        conn.execute(text("UPDATE background_jobs SET attempts = attempts + 1 WHERE id = :id"), {"id": job_id})


class _Ledger:
    behaviour: Any = None

    def __call__(self, ctx: Any) -> object:
        ctx.conn.execute(
            text("INSERT INTO wf_ledger (job_id, amount) VALUES (:id, :n)"),
            {"id": str(ctx.job_id), "n": ctx.payload["n"]},
        )
        if self.behaviour is not None:
            self.behaviour(ctx)
        return {"written": ctx.payload["n"]}


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Any:
    db: DB = request.getfixturevalue("pg_db" if "pg_db" in request.fixturenames else "any_db")
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS wf_ledger (job_id text PRIMARY KEY, amount integer)"))
        conn.execute(text("DELETE FROM wf_ledger"))
    handler = _Ledger()
    with job_type_for_test("wf-ledger", Step, handler, max_attempts=3, transactional=True):
        yield handler
    with db.begin() as conn:  # the session's database is shared: leave no table the models do not have
        conn.execute(text("DROP TABLE wf_ledger"))


@pytest.fixture
def fifo_queue(sqs: Any) -> Queue:
    return fifo_pair(sqs, "wf")[0]


def test_pruning_keeps_a_member_until_its_callback_finished(
    any_db: DB, queue: Queue, runtime: Runtime, seen: Seen
) -> None:
    """Past retention, a completed member whose callback still waits is kept (the callback reads it); once
    the callback finished, both go, and their dependency rows with them."""
    from db.relay import prune_jobs

    group = publish_group(
        any_db, [JobRequest("wf-member", {"n": n}) for n in range(2)], then=JobRequest("wf-callback", {}), queue=queue
    )
    assert group.then is not None
    first = receive_event(queue, max_messages=1)
    acknowledge(queue, first, process_batch(first, FakeLambdaContext(), runtime))
    future = utcnow() + timedelta(days=365)
    assert prune_jobs(any_db, JobStatus.COMPLETED, future) == 0
    _run_all(queue, runtime)
    assert prune_jobs(any_db, JobStatus.COMPLETED, future) == 3
    with any_db.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM job_dependencies")).scalar_one() == 0


def test_a_group_published_twice_by_its_callbacks_key_is_refused_and_writes_nothing(
    any_db: DB, queue: Queue, seen: Seen
) -> None:
    """Idempotency keys dedupe single jobs; a group or chain that names, by key, a job of an earlier workflow
    is a repeat of it, refused in one line naming that workflow (a second set of members would run)."""
    from db import enqueue_group
    from db.workflows import WorkflowAlreadyPublished

    members = [JobRequest("wf-member", {"n": n}) for n in range(3)]
    then = JobRequest("wf-callback", {}, idempotency_key="album-7")
    first = publish_group(any_db, members, then=then, queue=queue)
    with pytest.raises(WorkflowAlreadyPublished) as raised:
        publish_group(any_db, members, then=then, queue=queue)
    assert first.then is not None and str(raised.value) == (
        f"job type 'wf-callback' with idempotency key 'album-7' is already job {first.then.id} of workflow "
        f"{first.id}: this group or chain was published before (jobstack list --group {first.id}); nothing was written"
    )
    with any_db.engine.begin() as conn:  # in the caller's transaction: its own rows stay, ours roll back
        conn.execute(text("CREATE TEMP TABLE mine (n int)"))
        conn.execute(text("INSERT INTO mine VALUES (1)"))
        with pytest.raises(WorkflowAlreadyPublished):
            enqueue_group(conn, members, then=then)
        assert conn.execute(text("SELECT count(*) FROM mine")).scalar_one() == 1
    with any_db.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM background_jobs")).scalar_one() == 4
    keyed = JobRequest("wf-member", {"n": 9}, idempotency_key="plain-9")
    plain = publish(any_db, "wf-member", {"n": 9}, queue=queue, idempotency_key="plain-9")
    group = publish_group(any_db, [keyed], then=JobRequest("wf-callback", {}), queue=queue)  # a plain job's key
    assert group.jobs[0].id == plain.id


def test_a_job_that_gains_a_dependent_while_it_runs_releases_it(
    any_db: DB, queue: Queue, runtime: Runtime, seen: Seen
) -> None:
    """Claimed as a plain job (the lean completion), then named by `after=` while its handler runs: its
    completion still releases the new dependent, in the same batch (the row's mark is read back)."""
    first = publish(any_db, "wf-member", {"n": 1}, queue=queue)
    waiting: list[Any] = []

    def publish_meanwhile(ctx: Any) -> object:
        waiting.append(publish(any_db, "wf-callback", {}, queue=queue, after=[ctx.job_id]))
        return None

    from worker import registry

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(registry._handlers, "wf-member", registry.RegisteredHandler("wf-member", publish_meanwhile))
        event = receive_event(queue)
        acknowledge(queue, event, process_batch(event, FakeLambdaContext(), runtime))
    [follower] = waiting
    assert follower.status is JobStatus.WAITING
    released = get_job(any_db, follower.id)
    assert released is not None and released.status is JobStatus.PENDING and released.sent_at is not None
    assert _status(any_db, first.id) is JobStatus.COMPLETED
    _run_all(queue, runtime)
    assert _status(any_db, follower.id) is JobStatus.COMPLETED


def test_a_batch_of_members_costs_what_a_batch_of_plain_jobs_costs(
    pg_db: DB, queue: Queue, pg_runtime: Runtime, seen: Seen
) -> None:
    """1.1 statements per job, as for plain jobs: each member's completion settles the callback in its own
    statement (a WITH instead of the plain UPDATE). The batch that releases the callback then reads it and
    records its send (two more, once per group). PostgreSQL's count: what production pays through a pooler."""
    runtime, any_db = pg_runtime, pg_db
    publish_group(
        any_db, [JobRequest("wf-member", {"n": n}) for n in range(10)], then=JobRequest("wf-callback", {}), queue=queue
    )
    event = receive_event(queue)
    assert len(event["Records"]) == 10
    with count_statements(any_db) as counts:
        assert process_batch(event, FakeLambdaContext(), runtime) == {"batchItemFailures": []}
    assert counts == {"UPDATE": 2, "WITH": 10, "SELECT": 1, "(autocommit)": 13}


def test_a_steps_options_are_publishs_options(any_db: DB, queue: Queue, seen: Seen) -> None:
    """`JobRequest.of` takes the options exactly as `publish` does (jobstack.JobOptions), `delay` included:
    a chain's steps keep them, and an option publish does not know is one line."""
    chain = publish_chain(
        any_db,
        [JobRequest.of("wf-member", {"n": 1}, max_attempts=2), JobRequest.of("wf-member", {"n": 2}, priority="high")],
        queue=queue,
    )
    first, second = chain.jobs
    assert first.max_attempts == 2 and first.status is JobStatus.PENDING
    assert second.priority == "high" and second.status is JobStatus.WAITING
    later = JobRequest.of("wf-member", {}, delay=timedelta(minutes=20))
    assert later.run_at is not None and timedelta(minutes=19) < later.run_at - utcnow() <= timedelta(minutes=20)
    with pytest.raises(TypeError, match=r"^unknown job option 'retries': the options are delay_seconds, "):
        JobRequest.of("wf-member", {}, retries=3)  # type: ignore[call-arg]


def test_a_callbacks_queue_wait_starts_at_its_release_not_at_its_publish(
    any_db: DB, queue: Queue, runtime: Runtime, seen: Seen
) -> None:
    """Reported: the console counted a callback's wait for its members as queue wait. Its release stamps
    run_at, which db/queue_wait.py's rule (publish, or run_at if later) already reads, on both databases."""
    group = publish_group(any_db, [JobRequest("wf-member", {"n": 1})], then=JobRequest("wf-callback", {}), queue=queue)
    assert group.then is not None
    an_hour_ago = utcnow() - timedelta(hours=1)  # as if its members had taken an hour
    with any_db.begin() as conn:
        conn.execute(update(jobs_table).values(created_at=an_hour_ago))
    _run_all(queue, runtime)
    callback = get_job(any_db, group.then.id)
    assert callback is not None and callback.status is JobStatus.COMPLETED
    assert callback.run_at is not None and callback.run_at > an_hour_ago + timedelta(minutes=59)
    wait = queue_wait(callback.created_at, callback.run_at, callback.started_at, callback.attempts)
    assert wait is not None and wait < timedelta(minutes=1)
    [member] = group.jobs
    member_row = get_job(any_db, member.id)
    assert member_row is not None and member_row.run_at is None  # a job nobody waited on keeps its own
