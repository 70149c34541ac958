"""What a documentation page's hidden blocks use to show that its snippet did what the page says: the job a
page declared, published and run once through the real worker (`worker.batch.process_batch`) on the test's
database (`DATABASE_URL`) and embedded queue (`QUEUE_URL`), as `make local` would run it."""

from __future__ import annotations

import os
from typing import Any

import boto3
from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db import Queue, create_db, get_job, normalise_url, publish
from tests.support import esm
from tests.support.django_settings import configure_django
from tests.support.worker_support import make_config
from worker.batch import process_batch
from worker.runtime import Runtime


def run_one(job_type: str, payload: dict[str, Any]) -> tuple[str, object]:
    """Publish one job of `job_type`, deliver its message to the worker, and return its status and result."""
    sqs = boto3.client("sqs")
    queue = Queue(sqs, os.environ["QUEUE_URL"])
    dlq = Queue(sqs, sqs.create_queue(QueueName="docs-dlq")["QueueUrl"])
    db = create_db(os.environ["DATABASE_URL"])
    runtime = Runtime(make_config(os.environ["DATABASE_URL"], queue, dlq), db=db, sqs=sqs)
    try:
        job = publish(db, job_type, payload, queue=queue)
        esm.deliver(queue, lambda event, ctx: process_batch(event, ctx, runtime))
        done = get_job(db, job.id)
        assert done is not None
        return done.status, done.result
    finally:
        db.dispose()


def run_until_finished(job_type: str, payload: dict[str, Any], *, deliveries: int = 5) -> tuple[str, object, int]:
    """Publish one job of `job_type` and deliver its message until it completes or fails for good (retries
    come back at once): its status, its result and its attempts."""
    sqs = boto3.client("sqs")
    queue = Queue(sqs, os.environ["QUEUE_URL"])
    dlq = Queue(sqs, sqs.create_queue(QueueName="docs-dlq")["QueueUrl"])
    db = create_db(os.environ["DATABASE_URL"])
    config = make_config(os.environ["DATABASE_URL"], queue, dlq, backoff_base_seconds=0)
    runtime = Runtime(config, db=db, sqs=sqs)
    try:
        job = publish(db, job_type, payload, queue=queue)
        for _ in range(deliveries):
            esm.deliver(queue, lambda event, ctx: process_batch(event, ctx, runtime))
            done = get_job(db, job.id)
            assert done is not None
            if done.status in ("completed", "failed") and (done.status == "completed" or done.attempts_left == 0):
                return done.status, done.result, done.attempts
        raise AssertionError(f"job {job.id} not finished after {deliveries} deliveries")
    finally:
        db.dispose()


def work_once() -> None:
    """One poll of the event source into the real worker: what the page's queue (`QUEUE_URL`) holds, run on
    the page's database, as a deployed worker would run it."""
    sqs = boto3.client("sqs")
    queue = Queue(sqs, os.environ["QUEUE_URL"])
    dlq = Queue(sqs, sqs.create_queue(QueueName="docs-dlq")["QueueUrl"])
    db = create_db(os.environ["DATABASE_URL"])
    try:
        runtime = Runtime(make_config(os.environ["DATABASE_URL"], queue, dlq), db=db, sqs=sqs)
        esm.deliver(queue, lambda event, ctx: process_batch(event, ctx, runtime))
    finally:
        db.dispose()


def fresh_task_backends() -> Any:
    """Django's task backends made anew for the page (its QUEUE_URL), as a project's process makes them once:
    a context manager, closing the page's backend after it."""
    import contextlib

    from django.conf import settings
    from django.tasks import task_backends
    from django.test.utils import override_settings

    @contextlib.contextmanager
    def fresh() -> Any:
        with override_settings(TASKS=settings.TASKS):
            try:
                yield
            finally:
                task_backends["default"].close()

    return fresh()


def users_table(url: str) -> Any:
    """The `User` model a page's web app has: a table of its own beside the jobs, created if missing."""

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "docs_users"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(String(200), unique=True)

    engine = create_engine(normalise_url(url))
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()
    return User


def django_on(url: str) -> None:
    """Django configured on the page's database, as a project's settings.py would (once per process)."""
    configure_django(url)


def messages_for(queue_url: str) -> list[dict[str, Any]]:
    """The job messages waiting in the queue, their bodies parsed (they stay invisible for a minute)."""
    import json

    sqs = boto3.client("sqs")
    found: list[dict[str, Any]] = []
    while got := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages"):
        found.extend(json.loads(m["Body"]) for m in got)
    return found


def web_app() -> tuple[Any, Any]:
    """The `db` and `queue` a page's web app made as the publishing guide shows, from `jobstack` (the
    installed name of db/, as a web app imports it)."""
    import jobstack  # type: ignore[import-not-found]

    return jobstack.create_db(os.environ["DATABASE_URL"]), jobstack.Queue(boto3.client("sqs"), os.environ["QUEUE_URL"])


def declare(*names: str) -> None:
    """The job types a page publishes, as the web app's `db/job_types.py` declares them (any JSON object)."""
    from pydantic import BaseModel, ConfigDict

    import jobstack

    class AnyObject(BaseModel):
        model_config = ConfigDict(extra="allow")

    for name in names:
        jobstack.register_job_type(name, AnyObject)


def routes(types: dict[str, str], priorities: dict[str, str] | None = None) -> dict[str, str]:
    """A stack's `Routes` output for these pools, each with a queue of its own on the embedded SQS, exported
    as `JOBSTACK_ROUTES` the way `jobstack routes` prints it. Returns each pool's queue URL."""
    import json

    sqs = boto3.client("sqs")
    pools = {"default", *types.values(), *(priorities or {}).values()}
    queues = {pool: sqs.create_queue(QueueName=f"docs-{pool}")["QueueUrl"] for pool in sorted(pools)}
    os.environ["JOBSTACK_ROUTES"] = json.dumps(
        {"stack": "JobsStack-dev", "queues": queues, "types": types, "priorities": priorities or {}}
    )
    return queues
