"""The Lambda entry points as Lambda calls them: environment in, event in, response out."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from db import DB, ConfigError, JobStatus, Queue, get_job, publish
from db.models import jobs_table
from tests.support.esm import FakeLambdaContext, receive_event
from worker import handler as entry
from worker.backoff import retry_delay
from worker.metrics import BatchMetrics
from worker.observability import JsonFormatter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, pg_url: str, queue: Queue, dlq: Queue) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
    monkeypatch.setenv("QUEUE_URL", queue.url)
    monkeypatch.setenv("DLQ_URL", dlq.url)
    entry.reset_runtime()
    yield
    entry.reset_runtime()


@pytest.mark.integration
def test_handler_entry_processes_a_real_shaped_event(lambda_env: None, pg_db: DB, queue: Queue) -> None:
    job = publish(pg_db, "test-echo", {"hello": "world"}, queue=queue)
    response = entry.handler(receive_event(queue), FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED


@pytest.mark.integration
def test_cold_start_with_missing_configuration_fails_with_one_line(
    lambda_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DLQ_URL")
    entry.reset_runtime()
    with pytest.raises(ConfigError, match=r"^DLQ_URL is not set"):
        entry.handler({"Records": []}, FakeLambdaContext())


@pytest.mark.integration
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


@pytest.mark.unit
def test_metrics_are_embedded_metric_format_by_job_type() -> None:
    metrics = BatchMetrics("JobsStack-dev")
    metrics.count("send-email", "succeeded")
    metrics.count("send-email", "succeeded")
    metrics.count("resize", "dead_lettered")
    metrics.duration("send-email", 12.5)
    docs = {d["JobType"]: d for d in metrics.documents(now_ms=1)}
    email = docs["send-email"]
    assert email["JobsSucceeded"] == 2 and email["JobDuration"] == [12.5]
    directive = email["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Jobstack"
    assert directive["Dimensions"] == [["Service", "JobType"], ["Service"]]  # alarms watch the second set
    assert {m["Name"] for m in directive["Metrics"]} == {
        "JobsSucceeded",
        "JobsFailed",
        "JobsRetried",
        "JobsDeadLettered",
        "JobsCancelled",
        "JobsUnavailable",
        "JobsErrored",
        "JobDuration",
    }
    assert docs["resize"]["JobsDeadLettered"] == 1
    assert "JobDuration" not in docs["resize"]


@pytest.mark.unit
def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    assert [retry_delay(n, base=10, cap=900, rand=lambda: 1.0) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert retry_delay(3, base=10, cap=900, rand=lambda: 0.0) == 20  # jitter floor: half the delay
    assert retry_delay(20, base=10, cap=900, rand=lambda: 1.0) == 900


@pytest.mark.unit
def test_importing_the_handler_does_not_import_boto3() -> None:
    code = "import sys, worker.handler; print('boto3' in sys.modules, 'botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.unit
@pytest.mark.parametrize("entry", ["worker.handler", "worker.sweeper", "worker.scheduled"])
def test_the_import_path_loads_only_what_it_runs(entry: str) -> None:
    """The ORM's declarative layer and every PostgreSQL driver's dialect cost a cold start 60 ms and the
    worker runs Core statements only (the dialect a connection needs loads when it is first made); the
    sweeper and the schedules' entry point never run a job, so they import no handler; urllib's HTTP client
    loads only when the secrets extension is asked."""
    banned = ("sqlalchemy.orm", "sqlalchemy.dialects.postgresql", "boto3", "worker.jobs", "urllib.request")
    code = f"import sys, {entry}; print(sorted(m for m in {banned!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    expected = ["worker.jobs"] if entry == "worker.handler" else []
    assert out.stdout.strip() == str(expected)


@pytest.mark.integration
def test_the_orm_class_maps_the_same_table_for_web_apps(pg_db: DB) -> None:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    import db
    from db.orm import BackgroundJob

    assert db.__getattr__("BackgroundJob") is BackgroundJob  # `db.BackgroundJob`, imported on first use
    with Session(pg_db.engine) as session, session.begin():
        assert session.scalar(select(func.count()).select_from(BackgroundJob)) == 0
    assert BackgroundJob.__table__ is jobs_table
