"""Shared fixtures: a real PostgreSQL database for the session, SQLite files, moto SQS.

The session creates one uniquely named PostgreSQL database, migrates it, and drops it at the end. Each
test that asks for `pg_db` starts with an empty `background_jobs` table. No server is a failure with one
line naming TEST_DATABASE_URL, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from db import DB, Queue, create_db
from db.migrate import upgrade

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REGION = "us-east-1"


def _admin_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or DEFAULT_ADMIN_URL


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh, migrated database that lives for the whole test session."""
    admin = make_url(_admin_url()).set(drivername="postgresql+psycopg")
    name = f"jobstack_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as err:
        engine.dispose()
        pytest.exit(
            f"PostgreSQL is required for the tests and did not answer at {admin.render_as_string()} "
            f"({type(err).__name__}): start it or set TEST_DATABASE_URL to a server where you may "
            "create databases",
            returncode=1,
        )
    url = admin.set(database=name).render_as_string(hide_password=False)
    migrated = create_db(url)
    upgrade(migrated)
    migrated.dispose()
    try:
        yield url
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[DB]:
    db = create_db(pg_url, pool_size=4)
    with db.begin() as conn:
        conn.execute(text("TRUNCATE background_jobs"))
    yield db
    db.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[DB]:
    db = create_db(f"sqlite:///{tmp_path / 'jobs.db'}")
    upgrade(db)
    yield db
    db.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def any_db(request: pytest.FixtureRequest) -> DB:
    """The same test against both supported databases."""
    name = "pg_db" if request.param == "postgresql" else "sqlite_db"
    db: DB = request.getfixturevalue(name)
    return db


@pytest.fixture
def aws() -> Iterator[None]:
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[var] = "testing"
    with mock_aws():
        yield


@pytest.fixture
def sqs(aws: None):
    return boto3.client("sqs", region_name=REGION)


@pytest.fixture
def queue(sqs) -> Queue:
    """A main queue with a DLQ and redrive, as the stack creates them."""
    dlq_url = sqs.create_queue(QueueName="jobs-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName="jobs",
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"5"}}',
        },
    )["QueueUrl"]
    return Queue(client=sqs, url=url)
