"""The Lambda entry points as Lambda calls them: environment in, event in, response out."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from db import DB, ConfigError, JobStatus, Queue, get_job, publish
from db.models import jobs_table
from tests.support.esm import FakeLambdaContext, receive_event
from worker import handler as entry
from worker.observability import JsonFormatter

pytestmark = pytest.mark.integration


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, pg_url: str, queue: Queue, dlq: Queue) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
    monkeypatch.setenv("QUEUE_URL", queue.url)
    monkeypatch.setenv("DLQ_URL", dlq.url)
    entry.reset_runtime()
    yield
    entry.reset_runtime()


def test_handler_entry_processes_a_real_shaped_event(lambda_env: None, pg_db: DB, queue: Queue) -> None:
    job = publish(pg_db, "test-echo", {"hello": "world"}, queue=queue)
    response = entry.handler(receive_event(queue), FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED


def test_cold_start_with_missing_configuration_fails_with_one_line(
    lambda_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DLQ_URL")
    entry.reset_runtime()
    with pytest.raises(ConfigError, match=r"^DLQ_URL is not set"):
        entry.handler({"Records": []}, FakeLambdaContext())


def test_outcome_log_line_has_the_fields_and_never_the_payload(
    lambda_env: None, pg_db: DB, queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobstack.worker")
    job = publish(pg_db, "test-echo", {"email": "person@example.com"}, queue=queue)
    event = receive_event(queue)
    entry.handler(event, FakeLambdaContext())
    [outcome] = [r for r in caplog.records if r.getMessage() == "job outcome"]
    line = json.loads(JsonFormatter().format(outcome))
    assert line["job_id"] == str(job.id)
    assert line["type"] == "test-echo"
    assert line["attempt"] == 1
    assert line["message_id"] == event["Records"][0]["messageId"]
    assert line["outcome"] == "succeeded"
    assert isinstance(line["duration_ms"], float)
    info_and_up = [JsonFormatter().format(r) for r in caplog.records if r.levelno >= logging.INFO]
    assert not any("person@example.com" in text for text in info_and_up)


def test_the_orm_class_maps_the_same_table_for_web_apps(pg_db: DB) -> None:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    import db
    from db.orm import BackgroundJob

    assert db.__getattr__("BackgroundJob") is BackgroundJob  # `db.BackgroundJob`, imported on first use
    with Session(pg_db.engine) as session, session.begin():
        assert session.scalar(select(func.count()).select_from(BackgroundJob)) == 0
    assert BackgroundJob.__table__ is jobs_table
