"""`jobstack` never shows a traceback for what an operator can fix, and never pairs one place's database with
another's queues: each case is one line on stderr that names what is wrong and what to do."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cli.scratch_database import admin_url
from cli.target import Target
from db import DB, create_db
from db.migrate import upgrade
from tests.support.cli_runner import Jobs
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration
REGION = "us-east-1"


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A PostgreSQL database nobody ran `jobstack migrate` against."""
    server = make_url(admin_url()).set(drivername="postgresql+psycopg")
    name = f"jobstack_unmigrated_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _one_line(result: Any) -> str:
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    return str(lines[0])


def test_an_unmigrated_database_says_run_jobs_migrate(jobs: Jobs, empty_database: str, tmp_path: Path) -> None:
    for argv in (["list"], ["stats"], ["publish", "test-echo"]):
        result = jobs(*argv, "--database-url", empty_database, "--queue-url", "http://q", connect=False)
        assert result.code == 1
        assert "has no background_jobs table: run `jobstack migrate`" in _one_line(result)
    sqlite = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    result = jobs("list", "--database-url", sqlite, connect=False)
    assert result.code == 1 and "run `jobstack migrate`" in _one_line(result)


def test_a_database_behind_on_migrations_names_the_missing_column(jobs: Jobs, empty_database: str) -> None:
    db = create_db(empty_database)
    upgrade(db, "0001")  # before sent_at and send_count
    db.dispose()
    result = jobs("list", "--database-url", empty_database, connect=False)
    assert result.code == 1
    line = _one_line(result)
    assert "background_jobs table has no sent_at column" in line and "run `jobstack migrate`" in line


def _stack(outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="JobsStack-dev", TemplateBody=json.dumps(template)
    )


def test_a_stack_that_does_not_exist_and_an_empty_secret(jobs: Jobs, aws: None) -> None:
    result = jobs("list", "--env", "dev", connect=False)
    assert result.code == 1
    assert "cannot read stack JobsStack-dev" in _one_line(result) and "is it deployed?" in result.err
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(Name="db", SecretString=" ")["ARN"]
    _stack({"DatabaseSecretArn": arn})
    result = jobs("list", "--env", "dev", connect=False)
    assert result.code == 2
    assert f"database secret {arn} is empty: put the pooler URL in it" in _one_line(result)


class Throttled:
    def __getattr__(self, name: str) -> Any:
        def call(**_kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, name)

        return call


def test_throttling_is_one_line(jobs: Jobs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Target, "client", lambda _self, _service: Throttled())
    result = jobs("stats")
    assert result.code == 1
    assert "AWS call failed: ThrottlingException: Rate exceeded" in _one_line(result)


def test_the_cli_retries_aws_calls_as_throttled_operators_need() -> None:
    client = Target(region="us-east-1").client("sqs")
    assert client.meta.config.retries["mode"] == "adaptive"
    assert client.meta.config.retries["total_max_attempts"] >= 5


def test_connection_options_go_before_or_after_the_command(
    jobs: Jobs, pg_url: str, pg_db: DB, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = insert_job(pg_db)
    after = jobs("list", "--json", "--database-url", pg_url, connect=False)
    before = jobs("--json", "--database-url", pg_url, "list", connect=False)
    assert after.code == before.code == 0
    assert (
        [row["id"] for row in json.loads(before.out)] == [row["id"] for row in json.loads(after.out)] == [str(job.id)]
    )
    monkeypatch.setenv("JOBS_ENV", "no-such-env")
    result = jobs("list", connect=False)
    assert result.code == 2 and "'no-such-env'" in _one_line(result), "JOBS_ENV stands for --env"


def test_an_environment_is_never_paired_with_a_url_left_in_the_shell(
    jobs: Jobs, pg_url: str, monkeypatch: pytest.MonkeyPatch, aws: None
) -> None:
    """Reported: `jobstack --env prod ...` with a local DATABASE_URL exported used the local database beside the
    prod queue. Only a flag pairs them."""
    _stack({"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/JobsStack-dev-jobs"})
    monkeypatch.setenv("DATABASE_URL", pg_url)
    result = jobs("--env", "dev", "list", connect=False)
    assert result.code == 2
    line = _one_line(result)
    assert "--env dev with $DATABASE_URL set in your shell" in line and "--database-url" in line
    assert jobs("--env", "dev", "list", "--database-url", pg_url, connect=False).code == 0
