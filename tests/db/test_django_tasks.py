"""jobstack.django, Django's Tasks backend, held to the behaviours Django's docs state for a backend
(enqueue, get_result, run_after, priorities, takes_context, validate_task) on real PostgreSQL, with the
worker running the tasks through its Lambda entry (moto's SQS, the event source mapping played as AWS does):
the row is written in the request's transaction, so a task enqueued in a transaction that rolls back never
runs; a result is read from the row by any process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import text

from db import DB, JobStatus, Queue, get_job
from tests.support.django_settings import configure_django
from tests.support.esm import FakeLambdaContext, deliver, receive_event
from tests.support.worker_support import job_type_for_test, make_config
from worker.batch import process_batch
from worker.runtime import Runtime

pytestmark = pytest.mark.integration
BACKEND = "jobstack.django.JobstackBackend"


@pytest.fixture
def tasks(pg_url: str, pg_db: DB, queue: Queue) -> Iterator[ModuleType]:
    """Django on the test's database, its default task backend jobstack's on the test's queue."""
    configure_django(pg_url)
    from django.db import connection
    from django.tasks import task_backends
    from django.test.utils import override_settings

    options = {"QUEUE_URL": queue.url, "SQS_CLIENT": queue.client}
    with override_settings(TASKS={"default": {"BACKEND": BACKEND, "OPTIONS": options}}):
        from tests.support import django_tasks

        try:
            yield django_tasks
        finally:
            task_backends["default"].close()
            connection.close()


@contextlib.contextmanager
def _backend(**params: Any) -> Iterator[None]:
    """Another configuration of the default backend for a block, its own pool closed after it (a backend left
    to the garbage collector leaves its connections open)."""
    from django.tasks import task_backends
    from django.test.utils import override_settings

    with override_settings(TASKS={"default": {"BACKEND": BACKEND, **params}}):
        try:
            yield
        finally:
            task_backends["default"].close()


def _work(pg_db: DB, queue: Queue, dlq: Queue, context: FakeLambdaContext | None = None) -> dict[str, Any]:
    """One poll of the event source mapping into the worker's batch entry."""
    url = pg_db.engine.url.render_as_string(hide_password=False)
    runtime = Runtime(
        make_config(url, queue, dlq, backoff_base_seconds=0, backoff_max_seconds=0), db=pg_db, sqs=queue.client
    )
    return deliver(queue, lambda event, ctx: process_batch(event, ctx, runtime), context)[1]


def _sent(queue: Queue) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in receive_event(queue)["Records"]]


def test_enqueue_writes_the_job_and_sends_it_then_the_worker_runs_it(
    tasks: ModuleType, pg_db: DB, queue: Queue, dlq: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    from django.tasks import TaskResultStatus, task_backends

    backend = task_backends["default"]
    assert type(backend).__module__ == "jobstack.django" and backend.alias == "default"
    with caplog.at_level(logging.DEBUG, logger="django.tasks"):
        result = tasks.echo.enqueue(1, two=3)
    [enqueued] = [r.getMessage() for r in caplog.records if r.name == "django.tasks"]
    assert "enqueued" in enqueued and result.id in enqueued, "Django's task_enqueued signal, sent by enqueue"
    assert result.status == TaskResultStatus.READY and not result.is_finished
    assert (result.args, result.kwargs, result.attempts, result.backend) == ([1], {"two": 3}, 0, "default")
    assert result.enqueued_at is not None and result.started_at is None and result.finished_at is None
    job = get_job(pg_db, uuid.UUID(result.id))
    assert job is not None and job.type == "django.task" and job.status is JobStatus.PENDING
    assert job.payload["task"] == "tests.support.django_tasks.echo"

    _work(pg_db, queue, dlq, FakeLambdaContext(aws_request_id="req-1"))
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.is_finished
    assert result.return_value == {"args": [1], "kwargs": {"two": 3}}
    assert result.worker_ids == ["req-1"] and result.attempts == 1
    assert result.enqueued_at <= result.started_at <= result.finished_at  # type: ignore[operator]
    assert result.last_attempted_at == result.started_at and result.errors == []
    assert tasks.echo.get_result(result.id).return_value == result.return_value  # Task.get_result too


def test_a_task_enqueued_in_a_rolled_back_transaction_never_runs(tasks: ModuleType, pg_db: DB, queue: Queue) -> None:
    from django.db import transaction

    class Refused(Exception):
        pass

    with pytest.raises(Refused), transaction.atomic():
        result = tasks.noop.enqueue()
        raise Refused
    assert get_job(pg_db, uuid.UUID(result.id)) is None, "the row rolled back with the request"
    assert _sent(queue) == [], "and nothing was sent"

    with transaction.atomic():
        kept = tasks.noop.enqueue()
        assert _sent(queue) == [], "the message waits for the commit"
    [message] = _sent(queue)
    assert message["jobId"] == kept.id


def test_a_failing_task_records_each_error_and_fails_for_good(
    tasks: ModuleType, pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    from django.tasks import TaskResultStatus

    for task, exception, message in (
        (tasks.failing_value_error, ValueError, "This Task failed due to ValueError"),
        (tasks.failing_system_exit, SystemExit, "This Task failed due to SystemExit"),
    ):
        result = task.enqueue()
        for _ in range(5):  # the type's max_attempts (DEFAULT_MAX_ATTEMPTS), retried at once (backoff 0)
            _work(pg_db, queue, dlq)
        result.refresh()
        assert result.status == TaskResultStatus.FAILED and result.is_finished
        with pytest.raises(ValueError, match="Task failed"):
            _ = result.return_value
        assert len(result.errors) == 5 and result.attempts == 5
        assert all(e.exception_class is exception for e in result.errors)
        assert result.errors[0].traceback.endswith(f"{exception.__name__}: {message}\n")
        assert result.finished_at is not None and result.finished_at >= result.started_at


def test_a_return_value_that_is_not_json_fails_the_task_with_a_type_error(
    tasks: ModuleType, pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    result = tasks.complex_return_value.enqueue()
    _work(pg_db, queue, dlq)
    result.refresh()
    assert result.errors[0].exception_class is TypeError and "Unsupported type" in result.errors[0].traceback


def test_takes_context_gives_the_result_and_the_attempt(tasks: ModuleType, pg_db: DB, queue: Queue, dlq: Queue) -> None:
    own = tasks.own_id.enqueue()
    twice = tasks.fails_once.enqueue()
    _work(pg_db, queue, dlq)  # both in one batch: own_id completes, fails_once fails its first attempt
    _work(pg_db, queue, dlq)
    own.refresh()
    twice.refresh()
    assert own.return_value == own.id
    assert twice.return_value == 2 and twice.attempts == 2 and len(twice.errors) == 1
    assert twice.errors[0].exception_class is RuntimeError


def test_an_async_task_runs(tasks: ModuleType, pg_db: DB, queue: Queue, dlq: Queue) -> None:
    from asgiref.sync import async_to_sync

    # aenqueue from an async view: async_to_sync keeps Django's thread-sensitive call on this thread (and its
    # connection, which the fixture closes), as ASGI's request handling does
    result = async_to_sync(tasks.async_echo.aenqueue)("hello")
    _work(pg_db, queue, dlq)
    assert async_to_sync(tasks.async_echo.aget_result)(result.id).return_value == "async hello"


def test_run_after_defers_the_job(tasks: ModuleType, pg_db: DB, queue: Queue) -> None:
    from django.tasks.exceptions import InvalidTask

    later = datetime.now(UTC) + timedelta(hours=2)
    result = tasks.noop.using(run_after=later).enqueue()
    job = get_job(pg_db, uuid.UUID(result.id))
    assert job is not None and job.status is JobStatus.SCHEDULED and job.run_at == later
    assert _sent(queue) == [], "beyond SQS's 15 minutes: the sweeper releases it at its time"
    assert tasks.noop.get_result(result.id).task.run_after == later
    with pytest.raises(InvalidTask, match="run_after must be an aware datetime"):
        tasks.noop.using(run_after=datetime.now() + timedelta(hours=1))


def test_priority_runs_in_a_lane_by_the_stated_rule_and_is_refused_without_lanes(
    tasks: ModuleType, pg_db: DB, queue: Queue
) -> None:
    from django.tasks.exceptions import InvalidTask

    with pytest.raises(InvalidTask) as refused:
        tasks.noop.using(priority=10)
    assert "SQS keeps no order within a queue" in str(refused.value) and "\n" not in str(refused.value)

    override = _backend(
        OPTIONS={
            "QUEUE_URL": queue.url,
            "SQS_CLIENT": queue.client,
            "PRIORITY_LANES": {"high": 50, "urgent": 90, "bulk": -50},
        }
    )
    with override:
        lanes = {p: tasks.noop.using(priority=p).enqueue().id for p in (100, 90, 60, 49, 0, -49, -50, -100)}
        rows = {p: get_job(pg_db, uuid.UUID(i)) for p, i in lanes.items()}
        assert {p: r.priority for p, r in rows.items() if r} == {
            100: "urgent",
            90: "urgent",
            60: "high",
            49: None,
            0: None,
            -49: None,
            -50: "bulk",
            -100: "bulk",
        }
        assert tasks.noop.get_result(lanes[60]).task.priority == 60
        with pytest.raises(InvalidTask, match="priority must be a whole number between -100 and 100"):
            tasks.noop.using(priority=101)


def test_queue_names_are_pools_and_an_unknown_one_is_refused(tasks: ModuleType, pg_db: DB, queue: Queue) -> None:
    from django.tasks.exceptions import InvalidTask

    with pytest.raises(InvalidTask, match="Queue 'video' is not valid for backend"):
        tasks.noop.using(queue_name="video").enqueue()
    routes = json.dumps({"stack": "JobsStack-test", "queues": {"default": queue.url, "video": queue.url + "-video"}})
    override = _backend(
        QUEUES=["default", "video", "audio"], OPTIONS={"JOBSTACK_ROUTES": routes, "SQS_CLIENT": queue.client}
    )
    queue.client.create_queue(QueueName=queue.url.rsplit("/", 1)[1] + "-video")
    with override:
        sent = tasks.noop.using(queue_name="video").enqueue()
        video = queue.client.receive_message(QueueUrl=queue.url + "-video").get("Messages", [])
        assert [json.loads(m["Body"])["jobId"] for m in video] == [sent.id]
        with pytest.raises(InvalidTask) as refused:
            tasks.noop.using(queue_name="audio").enqueue()
        assert "queue 'audio' is not a pool of JobsStack-test (its pools: default, video)" in str(refused.value)
    assert _sent(queue) == [] and _count(pg_db) == 1, "the refused task wrote nothing"


def test_what_cannot_run_is_refused_in_one_line_and_writes_nothing(tasks: ModuleType, pg_db: DB, queue: Queue) -> None:
    from django.tasks import task
    from django.tasks.exceptions import InvalidTask

    def inner() -> None:
        return None

    with pytest.raises(InvalidTask, match="Task function must be defined at a module level"):
        task(inner)
    with pytest.raises(InvalidTask) as not_json:
        tasks.noop.enqueue(object())
    assert str(not_json.value).startswith("task tests.support.django_tasks.noop: its arguments must be JSON")
    assert "\n" not in str(not_json.value)
    assert _sent(queue) == [] and _count(pg_db) == 0


def test_get_result_of_an_unknown_id_does_not_exist(tasks: ModuleType, pg_db: DB) -> None:
    from asgiref.sync import async_to_sync
    from django.tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch

    for unknown in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(TaskResultDoesNotExist):
            tasks.noop.get_result(unknown)
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(tasks.noop.aget_result)("00000000-0000-0000-0000-000000000000")
    other = tasks.echo.enqueue()
    with pytest.raises(TaskResultMismatch):
        tasks.noop.get_result(other.id)


def _count(pg_db: DB) -> int:
    with pg_db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM background_jobs")).scalar_one())


def test_an_async_django_task_and_an_async_handler_share_one_batch(
    tasks: ModuleType, pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    """Crossing: the Django task runs in the batch's in-order phase (Django's async_to_sync needs no running
    loop there), the async handler on the invocation's loop after it; both complete in one invocation."""
    from pydantic import BaseModel

    from db import publish

    class Empty(BaseModel):
        pass

    async def waits(_ctx: Any) -> str:
        await asyncio.sleep(0.01)
        return "handler"

    with job_type_for_test("async-beside-django", Empty, waits, max_attempts=2):
        plain = publish(pg_db, "async-beside-django", {}, queue=queue)
        result = tasks.async_echo.enqueue("both")
        assert _work(pg_db, queue, dlq) == {"batchItemFailures": []}
    result.refresh()
    assert result.return_value == "async both"
    done = get_job(pg_db, plain.id)
    assert done is not None and done.result == "handler"


def test_a_tenant_context_gives_the_tasks_enqueued_in_it_their_tenant(
    tasks: ModuleType, pg_db: DB, queue: Queue
) -> None:
    from django.tasks.exceptions import InvalidTask

    from jobstack.django import tenant  # type: ignore[import-not-found]  # the backend's own module

    with tenant("acme"):
        mine = tasks.noop.enqueue()
        with tenant(None):
            nobody = tasks.noop.enqueue()
    after = tasks.noop.enqueue()
    tenants = [getattr(get_job(pg_db, uuid.UUID(r.id)), "tenant", "?") for r in (mine, nobody, after)]
    assert tenants == ["acme", None, None], "the context ends with its block"
    got = queue.client.receive_message(
        QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageSystemAttributeNames=["All"]
    )["Messages"]
    groups = {json.loads(m["Body"])["jobId"]: m.get("Attributes", {}).get("MessageGroupId") for m in got}
    assert groups[mine.id] == "acme" and groups[nobody.id] is None, "sent as the message's group (fair queues)"
    with pytest.raises(InvalidTask) as refused, tenant("has space"):
        tasks.noop.enqueue()
    assert str(refused.value).startswith("task tests.support.django_tasks.noop: tenant must be 1-128 letters")
    assert "\n" not in str(refused.value) and _count(pg_db) == 3
