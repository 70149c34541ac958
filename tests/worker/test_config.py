"""Configuration and secrets: one clear line for every mistake, and no secret in any message."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from db import ConfigError
from worker.config import load_config
from worker.secrets import parse_secret

pytestmark = pytest.mark.unit

Q = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"
DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs-dlq"
BASE = {"DATABASE_URL": "postgresql://app:hunter2@db:6543/postgres", "QUEUE_URL": Q, "DLQ_URL": DLQ}


def test_a_complete_environment_loads_with_defaults() -> None:
    config = load_config(BASE | {"JOB_STALE_AFTER_SECONDS": "120", "LOG_LEVEL": "debug"})
    assert config.queue_url == Q and config.dlq_url == DLQ
    assert config.stale_after == timedelta(seconds=120)
    assert config.log_level == "DEBUG"
    assert config.backoff_max_seconds == 900
    assert config.completion == "per_job"  # absent: each success durable before the next handler starts
    assert load_config(BASE | {"JOB_COMPLETION": "batched"}).completion == "batched"


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"QUEUE_URL": Q, "DLQ_URL": DLQ}, "no database configured: set DATABASE_SECRET_ARN"),
        (BASE | {"DATABASE_SECRET_ARN": "arn:aws:secretsmanager:x"}, "both DATABASE_URL and DATABASE_SECRET_ARN"),
        (BASE | {"DATABASE_URL": "mysql://root:hunter2@db/x"}, "unsupported database URL"),
        (BASE | {"QUEUE_URL": ""}, "QUEUE_URL is not set"),
        (BASE | {"DLQ_URL": "jobs-dlq"}, "DLQ_URL must be an SQS queue URL"),
        (BASE | {"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of"),
        (BASE | {"JOB_COMPLETION": "eventually"}, "JOB_COMPLETION must be one of per_job, batched, got 'eventually'"),
        (BASE | {"JOB_STALE_AFTER_SECONDS": "ten"}, "JOB_STALE_AFTER_SECONDS must be a whole number"),
        (BASE | {"JOB_BACKOFF_MAX_SECONDS": "1"}, "must be at least JOB_BACKOFF_BASE_SECONDS"),
        (BASE | {"JOB_BACKOFF_MAX_SECONDS": "90000"}, "at most 43200"),
    ],
)
def test_bad_configuration_is_one_line_naming_the_variable(environ: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("postgresql://app:pw@db:6543/postgres", "postgresql://app:pw@db:6543/postgres"),
        (json.dumps({"url": "postgres://app:pw@db/x"}), "postgres://app:pw@db/x"),
        (
            json.dumps({"username": "app", "password": "p@ss/word", "host": "db", "port": 6543, "dbname": "jobs"}),
            "postgresql://app:p%40ss%2Fword@db:6543/jobs",
        ),
    ],
)
def test_secret_shapes_teams_store(value: str, url: str) -> None:
    assert parse_secret("arn:aws:secretsmanager:us-east-1:1:secret:db", value) == url


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "is empty"),
        ("hunter2-not-a-url", "neither a postgresql:// URL nor JSON"),
        (json.dumps({"username": "app", "password": "hunter2"}), "lacks host"),
    ],
)
def test_bad_secrets_are_explained_without_their_value(value: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_secret("arn:aws:secretsmanager:us-east-1:1:secret:db", value)
    assert says in str(caught.value)
    assert "hunter2" not in str(caught.value)
