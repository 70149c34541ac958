"""The worker's state machine decides and the batch acts (worker/processing.py, worker/batch.py).

`decide()` must never call SQS: every dead letter, fresh copy and visibility change is the batch's, done in
record order through worker/transport.py. These tests give `decide()` a runtime whose SQS client refuses
every call, and check that each path still ends in a decision that names what the batch must do.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest

from db import DB, JobStatus, Queue, get_job, publish
from tests.support.esm import FakeLambdaContext, receive_event
from tests.support.worker_support import Calls, make_config
from worker.completion import DeferredCompletion
from worker.contract import DeadLetterKind
from worker.outcomes import Decision, Outcome
from worker.processing import before_the_receive_limit, decide
from worker.record import SqsRecord
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


class NoSqs:
    """An SQS client that fails the test on any call: the state machine may not talk to SQS."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"worker/processing.py called SQS ({name})")


@pytest.fixture
def no_sqs_runtime(pg_url: str, pg_db: DB, queue: Queue, dlq: Queue) -> Runtime:
    return Runtime(make_config(pg_url, queue, dlq), db=pg_db, sqs=NoSqs())


def _record(body: str, *, receive_count: int = 1, **extra: Any) -> SqsRecord:
    return SqsRecord.of(
        {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "rh",
            "body": body,
            "attributes": {"ApproximateReceiveCount": str(receive_count), **extra},
        }
    )


def test_a_malformed_message_is_decided_as_a_dead_letter_without_calling_sqs(no_sqs_runtime: Runtime) -> None:
    decision = decide(_record("not json"), FakeLambdaContext(), no_sqs_runtime, DeferredCompletion(no_sqs_runtime))
    assert decision.outcome is Outcome.DEAD_LETTERED
    assert decision.dead_letter is DeadLetterKind.MALFORMED
    assert decision.error is not None and decision.error.startswith("malformed message:")


def test_an_unknown_type_is_decided_as_a_dead_letter_and_its_row_failed(no_sqs_runtime: Runtime) -> None:
    body = json.dumps({"jobId": str(uuid.uuid4()), "type": "nobody.handles.this", "payload": {}})
    decision = decide(_record(body), FakeLambdaContext(), no_sqs_runtime, DeferredCompletion(no_sqs_runtime))
    assert (decision.outcome, decision.dead_letter) == (Outcome.DEAD_LETTERED, DeadLetterKind.UNKNOWN_TYPE)


def test_a_failure_on_the_last_attempt_is_decided_as_a_dead_letter(
    pg_db: DB, queue: Queue, no_sqs_runtime: Runtime, calls: Calls
) -> None:
    job = publish(pg_db, "test-echo", {"fail": "card declined"}, queue=queue, max_attempts=1)
    [raw] = receive_event(queue)["Records"]
    completion = DeferredCompletion(no_sqs_runtime)
    decision = decide(SqsRecord.of(raw), FakeLambdaContext(), no_sqs_runtime, completion)
    assert (decision.job_id, decision.outcome) == (job.id, Outcome.DEAD_LETTERED)
    assert decision.dead_letter is DeadLetterKind.FAILED
    assert decision.handler_failed and decision.attempt == 1


def test_a_success_is_completed_with_the_next_claim_and_confirmed_at_the_flush(
    pg_db: DB, queue: Queue, no_sqs_runtime: Runtime, calls: Calls
) -> None:
    job = publish(pg_db, "test-echo", {"n": 1}, queue=queue)
    [raw] = receive_event(queue)["Records"]
    completion = DeferredCompletion(no_sqs_runtime)
    decision = decide(SqsRecord.of(raw), FakeLambdaContext(), no_sqs_runtime, completion)
    assert decision.outcome is Outcome.SUCCEEDED and decision.dead_letter is None
    # deferred: the row is still processing until the next claim or the flush
    assert _status(pg_db, job.id) is JobStatus.PROCESSING
    completion.flush()
    assert completion.final(decision) is decision
    assert _status(pg_db, job.id) is JobStatus.COMPLETED


def _status(db: DB, job_id: uuid.UUID) -> JobStatus:
    job = get_job(db, job_id)
    assert job is not None
    return job.status


def test_near_the_receive_limit_a_returned_record_is_decided_as_a_requeue_or_a_dead_letter(
    no_sqs_runtime: Runtime,
) -> None:
    """SQS counts every receive toward maxReceiveCount
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html): at half of it, a returned
    record is decided as a fresh copy; past the delivery budget, as a dead letter with the reason."""
    config = replace(no_sqs_runtime.config, max_receive_count=4, max_deliveries=10)
    busy = Decision(Outcome.BUSY, "m", visibility_seconds=30)
    early = before_the_receive_limit(_record("{}", receive_count=1), busy, config)
    assert early is busy
    near = before_the_receive_limit(_record("{}", receive_count=2), busy, config)
    assert (near.requeue_after, near.dead_letter) == (30, None)
    spent = SqsRecord.of(
        {
            "messageId": "m",
            "body": "{}",
            "attributes": {"ApproximateReceiveCount": "2"},
            "messageAttributes": {"jobstack.deliveries": {"stringValue": "9", "dataType": "Number"}},
        }
    )
    gave_up = before_the_receive_limit(spent, busy, config)
    assert (gave_up.outcome, gave_up.dead_letter) == (Outcome.DEAD_LETTERED, DeadLetterKind.UNDELIVERABLE)
    assert gave_up.error is not None and gave_up.error.startswith("gave up after 11 deliveries")


def test_a_record_view_and_a_decision_cannot_be_changed_in_place() -> None:
    record = _record("{}", receive_count=3, MessageGroupId="g")
    assert (record.receive_count, record.deliveries, record.group) == (3, 3, "g")
    with pytest.raises(FrozenInstanceError):
        record.body = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        record.message_attributes["x"] = {}  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        Decision(Outcome.SUCCEEDED, "m").outcome = Outcome.ERROR  # type: ignore[misc]
