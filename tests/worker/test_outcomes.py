"""Each row of the worker's outcome table, against real PostgreSQL and moto queues with redrive."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from bench.statements import count_statements
from db import DB, ClaimPlan, JobRequest, JobStatus, Queue, get_job, publish, publish_many, utcnow
from tests.support import esm
from tests.support.esm import FakeLambdaContext, acknowledge, drain, receive_event
from tests.support.factories import insert_job
from tests.support.worker_support import Calls, make_config
from worker.batch import process_batch
from worker.exceptions import BatchFailed
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


def deliver(queue: Queue, runtime: Runtime, context: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    return esm.deliver(queue, lambda event, ctx: process_batch(event, ctx, runtime), context)


def failed_ids(response: dict[str, Any]) -> set[str]:
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


def send_raw(queue: Queue, body: str, **attributes: str) -> None:
    queue.client.send_message(
        QueueUrl=queue.url,
        MessageBody=body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )


def test_success_completes_the_row_and_acknowledges(pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls) -> None:
    job = publish(pg_db, "count-calls", {"n": 7}, queue=queue)
    _, response = deliver(queue, runtime)
    assert response == {"batchItemFailures": []}
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED and row.completed_at is not None
    assert calls.runs == [{"job_id": job.id, "attempt": 1, "payload": {"n": 7}}]
    assert drain(queue) == []


def test_handler_error_with_attempts_left_retries_after_a_backoff(
    pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls
) -> None:
    calls.behaviour = lambda ctx: (_ for _ in ()).throw(TimeoutError("upstream took too long"))
    job = publish(pg_db, "count-calls", {}, queue=queue)
    event, response = deliver(queue, runtime)
    assert failed_ids(response) == {event["Records"][0]["messageId"]}
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.FAILED and row.attempts == 1
    assert row.error == "TimeoutError: upstream took too long"
    assert drain(queue) == []  # not visible again at once: its visibility was set to the backoff


def test_handler_error_on_the_last_attempt_dead_letters_with_the_reason(
    pg_db: DB, queue: Queue, dlq: Queue, runtime: Runtime
) -> None:
    job = publish(pg_db, "test-echo", {"fail": "card declined"}, queue=queue, max_attempts=1)
    _, response = deliver(queue, runtime)
    assert response == {"batchItemFailures": []}
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.FAILED and row.error == "EchoFailure: card declined"
    [dead] = drain(dlq)
    assert json.loads(dead["Body"])["jobId"] == str(job.id)
    attrs = dead["MessageAttributes"]
    assert attrs["jobstack.error"]["StringValue"] == "EchoFailure: card declined"
    assert attrs["jobstack.error-kind"]["StringValue"] == "failed"
    assert attrs["jobType"]["StringValue"] == "test-echo"
    assert drain(queue) == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("not json at all", "body is not JSON"),
        ('["a", "list"]', "body is not a JSON object"),
        ('{"type": "test-echo", "payload": {}}', "body has no 'jobId'"),
        ('{"jobId": 42, "type": "test-echo"}', "jobId must be a string UUID"),
        ('{"jobId": "abc", "type": "test-echo"}', "jobId 'abc' is not a UUID"),
    ],
)
def test_garbage_bodies_go_to_the_dlq_and_are_never_retried(
    queue: Queue, dlq: Queue, runtime: Runtime, body: str, says: str
) -> None:
    send_raw(queue, body)
    _, response = deliver(queue, runtime)
    assert response == {"batchItemFailures": []}
    [dead] = drain(dlq)
    assert dead["Body"] == body
    assert says in dead["MessageAttributes"]["jobstack.error"]["StringValue"]
    assert dead["MessageAttributes"]["jobstack.error-kind"]["StringValue"] == "malformed"


def test_a_garbled_message_naming_a_job_is_dead_lettered_and_leaves_the_row_alone(
    pg_db: DB, queue: Queue, dlq: Queue, runtime: Runtime
) -> None:
    job = insert_job(pg_db)
    send_raw(queue, json.dumps({"jobId": str(job.id), "payload": {}}))
    _, response = deliver(queue, runtime)
    assert response == {"batchItemFailures": []}
    assert get_job(pg_db, job.id) == job
    [dead] = drain(dlq)
    assert dead["MessageAttributes"]["jobstack.error"]["StringValue"] == "malformed message: body has no 'type'"


def test_unknown_type_fails_the_row_and_dead_letters(pg_db: DB, queue: Queue, dlq: Queue, runtime: Runtime) -> None:
    job = insert_job(pg_db, type="retired-type")
    send_raw(queue, json.dumps({"jobId": str(job.id), "type": "retired-type", "payload": {}}))
    _, response = deliver(queue, runtime)
    assert response == {"batchItemFailures": []}
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.FAILED
    assert row.error is not None and row.error.startswith("unknown job type 'retired-type'")
    [dead] = drain(dlq)
    assert dead["MessageAttributes"]["jobstack.error-kind"]["StringValue"] == "unknown_type"


def test_payload_invalid_for_its_type_fails_the_row_and_dead_letters(
    pg_db: DB, queue: Queue, dlq: Queue, runtime: Runtime, calls: Calls
) -> None:
    job = insert_job(pg_db, type="count-calls", payload={"n": "seven"})  # written around the publisher
    send_raw(queue, json.dumps({"jobId": str(job.id), "type": "count-calls", "payload": {"n": 1}}))
    _, response = deliver(queue, runtime)
    assert response == {"batchItemFailures": []}
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.FAILED
    assert row.error is not None and "n: Input should be a valid integer" in row.error
    assert calls.runs == []
    assert len(drain(dlq)) == 1


def test_message_type_that_differs_from_the_row_is_dead_lettered_and_leaves_the_row_alone(
    pg_db: DB, queue: Queue, dlq: Queue, runtime: Runtime, calls: Calls
) -> None:
    job = insert_job(pg_db, type="test-echo")
    send_raw(queue, json.dumps({"jobId": str(job.id), "type": "count-calls", "payload": {}}))
    deliver(queue, runtime)
    assert get_job(pg_db, job.id) == job
    assert calls.runs == []
    [dead] = drain(dlq)
    assert dead["MessageAttributes"]["jobstack.error-kind"]["StringValue"] == "type_mismatch"
    assert dead["MessageAttributes"]["jobstack.error"]["StringValue"] == (
        "message type 'count-calls' does not match job type 'test-echo'; the job is untouched"
    )


def test_the_handler_gets_the_rows_payload_not_the_messages(
    pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls
) -> None:
    job = insert_job(pg_db, type="count-calls", payload={"n": 1})
    send_raw(queue, json.dumps({"jobId": str(job.id), "type": "count-calls", "payload": {"n": 999}}))
    deliver(queue, runtime)
    assert calls.runs[0]["payload"] == {"n": 1}


def test_no_row_ever_is_retried_then_dead_lettered_by_the_worker_with_the_reason(
    pg_url: str, pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    # Backoff 0 so each retry is visible at once; the queue's maxReceiveCount is 5, as the config says.
    runtime = Runtime(make_config(pg_url, queue, dlq, backoff_base_seconds=0), db=pg_db, sqs=queue.client)
    body = json.dumps({"jobId": str(uuid.uuid4()), "type": "test-echo", "payload": {}})
    send_raw(queue, body)
    deliveries = 0
    while (event := receive_event(queue))["Records"]:
        deliveries += 1
        acknowledge(queue, event, process_batch(event, FakeLambdaContext(), runtime))
    [dead] = drain(dlq)
    assert dead["Body"] == body
    attrs = dead["MessageAttributes"]
    assert attrs["jobstack.error-kind"]["StringValue"] == "not_found"
    assert attrs["jobstack.error"]["StringValue"].startswith(f"no job row after {deliveries} deliveries")
    assert 5 <= deliveries <= 6  # SQS's own redrive (which drops the reason) never got to it


def test_duplicate_delivery_of_a_completed_job_is_acknowledged_without_running(
    pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls
) -> None:
    job = insert_job(pg_db, type="count-calls", status=JobStatus.COMPLETED, attempts=1)
    send_raw(queue, json.dumps({"jobId": str(job.id), "type": "count-calls", "payload": {}}))
    _, response = deliver(queue, runtime)
    assert response == {"batchItemFailures": []}
    assert calls.runs == []
    assert get_job(pg_db, job.id) == job


def test_a_job_processing_in_another_live_invocation_is_retried_later(
    pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls
) -> None:
    job = insert_job(pg_db, type="count-calls", status=JobStatus.PROCESSING, attempts=1, started_at=utcnow())
    send_raw(queue, json.dumps({"jobId": str(job.id), "type": "count-calls", "payload": {}}))
    event, response = deliver(queue, runtime)
    assert failed_ids(response) == {event["Records"][0]["messageId"]}
    assert calls.runs == []
    assert get_job(pg_db, job.id) == job


def test_a_stale_processing_job_is_reclaimed_and_processed(
    pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls
) -> None:
    died_at = utcnow() - timedelta(minutes=10)
    job = insert_job(pg_db, type="count-calls", status=JobStatus.PROCESSING, attempts=1, started_at=died_at)
    send_raw(queue, json.dumps({"jobId": str(job.id), "type": "count-calls", "payload": {}}))
    _, response = deliver(queue, runtime)
    assert response == {"batchItemFailures": []}
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED and row.attempts == 2
    assert [r["attempt"] for r in calls.runs] == [2]


def test_a_stale_job_out_of_attempts_is_marked_abandoned_and_dead_lettered(
    pg_db: DB, queue: Queue, dlq: Queue, runtime: Runtime, calls: Calls
) -> None:
    died_at = utcnow() - timedelta(minutes=10)
    job = insert_job(
        pg_db, type="count-calls", status=JobStatus.PROCESSING, attempts=3, max_attempts=3, started_at=died_at
    )
    send_raw(queue, json.dumps({"jobId": str(job.id), "type": "count-calls", "payload": {}}))
    _, response = deliver(queue, runtime)
    assert response == {"batchItemFailures": []}
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.FAILED and row.error == "abandoned: worker did not finish"
    assert calls.runs == []
    assert len(drain(dlq)) == 1


def test_too_little_time_left_returns_the_record_unclaimed(
    pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls
) -> None:
    job = publish(pg_db, "count-calls", {}, queue=queue)
    event, response = deliver(queue, runtime, FakeLambdaContext(timeout_ms=1_000))  # min_time_left is 2 s
    assert failed_ids(response) == {event["Records"][0]["messageId"]}
    assert get_job(pg_db, job.id) == job
    assert calls.runs == []
    assert len(receive_event(queue)["Records"]) == 1  # visible again at once for a fresher invocation


def test_database_unreachable_fails_the_invocation_and_returns_every_record(
    pg_db: DB, queue: Queue, dlq: Queue, calls: Calls
) -> None:
    jobs = [publish(pg_db, "count-calls", {"n": n}, queue=queue) for n in range(3)]
    down = Runtime(make_config("postgresql://app:hunter2@127.0.0.1:1/jobs", queue, dlq), sqs=queue.client)
    event = receive_event(queue)
    with pytest.raises(BatchFailed, match="database unavailable") as caught:
        process_batch(event, FakeLambdaContext(), down)
    assert "hunter2" not in str(caught.value)
    assert len(event["Records"]) == 3
    assert [get_job(pg_db, j.id) for j in jobs] == jobs
    assert calls.runs == []
    down.close()


def test_one_failing_record_does_not_fail_the_batch(pg_db: DB, queue: Queue, runtime: Runtime) -> None:
    ok = [publish(pg_db, "test-echo", {"n": n}, queue=queue) for n in range(3)]
    bad = publish(pg_db, "test-echo", {"fail": "just this one"}, queue=queue)
    event, response = deliver(queue, runtime)
    by_job = {json.loads(r["body"])["jobId"]: r["messageId"] for r in event["Records"]}
    assert failed_ids(response) == {by_job[str(bad.id)]}
    assert all(get_job(pg_db, j.id).status is JobStatus.COMPLETED for j in ok)  # type: ignore[union-attr]


def test_a_batch_of_ten_costs_eleven_statements_and_no_commit_statements(
    pg_db: DB, queue: Queue, runtime: Runtime
) -> None:
    """PostgreSQL, batch of 10: the first claim, nine statements that complete job i and claim job i+1
    together, the last completion: 1.1 round trips and 1.1 commits (autocommit) per job, every completion
    durable before the next handler starts."""
    publish_many(pg_db, [JobRequest("test-echo", {"n": n}) for n in range(10)], queue=queue)
    event = receive_event(queue)
    assert len(event["Records"]) == 10
    with count_statements(pg_db) as counts:
        assert process_batch(event, FakeLambdaContext(), runtime) == {"batchItemFailures": []}
    assert counts == {"UPDATE": 2, "WITH": 9, "(autocommit)": 11}
    with pg_db.begin() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM background_jobs GROUP BY 1")).all()
    assert [tuple(row) for row in rows] == [("completed", 10)]


@pytest.mark.parametrize("where", ["complete_and_claim", "finish_job"])
def test_a_held_success_whose_completion_is_not_confirmed_is_returned_not_acknowledged(
    pg_db: DB, queue: Queue, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A success's completion is held for the next claim (complete_and_claim) or the batch's end
    (complete_job). Whatever interrupts that statement, not only the database going away (here a bug of
    ours), the held record must return to the queue: acknowledging it would delete the only message of a
    row still `processing`, and the job would wait for the sweeper instead of its own redelivery."""
    jobs = publish_many(pg_db, [JobRequest("test-echo", {"n": n}) for n in range(2)], queue=queue)
    event = receive_event(queue)
    assert len(event["Records"]) == 2

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("interrupted")

    if where == "complete_and_claim":  # the statement a type's claim plan sends
        monkeypatch.setattr(ClaimPlan, "complete_and_claim", interrupted)
    else:
        monkeypatch.setattr(f"worker.completion.{where}", interrupted)
    response = process_batch(event, FakeLambdaContext(), runtime)
    by_job = {json.loads(r["body"])["jobId"]: r["messageId"] for r in event["Records"]}
    # complete_and_claim carries the first job's completion; complete_job the last one's, at the batch's end
    interrupted_record = event["Records"][0 if where == "complete_and_claim" else -1]
    assert interrupted_record["messageId"] in failed_ids(response)
    rows = {str(j.id): get_job(pg_db, j.id) for j in jobs}
    for job_id, message in by_job.items():
        row = rows[job_id]
        assert row is not None
        # acknowledged only if its row is completed: never a deleted message over an unfinished row
        assert (message not in failed_ids(response)) == (row.status is JobStatus.COMPLETED)


def test_database_statements_per_successful_job(pg_db: DB, queue: Queue, runtime: Runtime) -> None:
    """A batch of one: two statements (claim, complete), each a single UPDATE."""
    publish(pg_db, "test-echo", {}, queue=queue)
    event = receive_event(queue)
    with count_statements(pg_db) as counts:
        process_batch(event, FakeLambdaContext(), runtime)
    assert counts["UPDATE"] == 2
    assert counts["SELECT"] == 0
    with pg_db.begin() as conn:
        assert conn.execute(text("SELECT status FROM background_jobs")).scalar_one() == "completed"


def test_a_handler_error_holding_nul_is_recorded(pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls) -> None:
    """PostgreSQL text refuses NUL; recording such a failure must not itself fail and loop the message."""
    calls.behaviour = lambda ctx: (_ for _ in ()).throw(ValueError("bad byte \x00 in upstream reply"))
    job = publish(pg_db, "count-calls", {}, queue=queue)
    _, response = deliver(queue, runtime)
    assert len(response["batchItemFailures"]) == 1
    row = get_job(pg_db, job.id)
    assert row is not None and row.error == "ValueError: bad byte \\x00 in upstream reply"
