"""TLS to the database and password rotation, against a PostgreSQL server of the test's own.

libpq's default `sslmode=prefer` falls back to plain text and checks no certificate; deployed workers use
`verify-full` with an explicit CA file (the stack sets both). RDS-managed secrets rotate every 7 days; an
open connection survives a password change, but the next one (after a pooler drops an idle connection
during a Lambda freeze, say) is refused until the worker reads the secret again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

import worker.handler
from cli.fake_secrets_extension import FakeExtension, fake_extension
from db import DatabaseUnavailable, Queue, create_db, get_job, publish
from tests.support.esm import FakeLambdaContext, receive_event
from tests.support.own_postgres import OwnServer, make_authority, migrated_own_postgres
from worker.secret_sources import PORT_VARIABLE

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[OwnServer]:
    with migrated_own_postgres() as pg:
        yield pg


def _ssl_in_use(url: str, **tls: Any) -> bool:
    db = create_db(url, **tls)
    try:
        with db.begin() as conn:
            return bool(conn.exec_driver_sql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar())
    finally:
        db.dispose()


def test_verify_full_with_the_right_ca_connects_over_tls(server: OwnServer) -> None:
    assert _ssl_in_use(server.url(), sslmode="verify-full", sslrootcert=str(server.ca.pem))


def test_a_certificate_from_another_ca_is_refused_in_one_line_naming_the_ca_file(
    server: OwnServer, tmp_path: Path
) -> None:
    other = make_authority(tmp_path, "someone-else")
    with pytest.raises(DatabaseUnavailable) as caught:
        _ssl_in_use(server.url(), sslmode="verify-full", sslrootcert=str(other.pem))
    message = str(caught.value)
    assert caught.value.kind == "tls"
    assert message.startswith("database TLS check failed: ")
    assert f"must be signed by a CA in {other.pem}" in message
    assert "\n" not in message and server.password not in message


def test_a_certificate_for_another_host_name_is_refused(server: OwnServer) -> None:
    url = server.url(host="db.example.com", hostaddr="127.0.0.1")  # reach 127.0.0.1, expect that name
    with pytest.raises(DatabaseUnavailable, match=r'does not match host name "db\.example\.com"') as caught:
        _ssl_in_use(url, sslmode="verify-full", sslrootcert=str(server.ca.pem))
    assert caught.value.kind == "tls"


def test_a_url_of_its_own_keeps_its_sslmode(server: OwnServer) -> None:
    """An explicit `?sslmode=` in the secret's URL is the operator's documented opt-out and wins."""
    assert _ssl_in_use(server.url(sslmode="require"), sslmode="verify-full", sslrootcert="/nonexistent/ca.pem")


@pytest.fixture(params=["sdk", "extension"])
def deployed_worker(
    server: OwnServer, queue: Queue, dlq: Queue, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[tuple[str, Any]]:
    """The worker configured as the stack configures it: the URL in Secrets Manager, verify-full, the CA;
    read with the SDK, or through the secrets extension (whose cache serves a rotated secret stale)."""
    if request.param == "extension":
        token = "the-functions-session-token"
        extension = request.getfixturevalue("_secrets_extension_running")
        monkeypatch.setenv(PORT_VARIABLE, str(extension.port))
        monkeypatch.setenv("AWS_SESSION_TOKEN", token)
        extension.token = token
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secrets.create_secret(Name="jobs-db", SecretString=server.url())["ARN"]
    for name, value in {
        "DATABASE_SECRET_ARN": arn,
        "DATABASE_SSLMODE": "verify-full",
        "DATABASE_SSLROOTCERT": str(server.ca.pem),
        "QUEUE_URL": queue.url,
        "DLQ_URL": dlq.url,
        "LOG_LEVEL": "INFO",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    worker.handler.reset_runtime()
    yield arn, secrets
    worker.handler.reset_runtime()
    server.set_password("first-Password-1")


@pytest.fixture
def _secrets_extension_running() -> Iterator[FakeExtension]:
    with fake_extension("") as fake:
        yield fake


def test_the_worker_survives_a_password_rotation(
    server: OwnServer, queue: Queue, deployed_worker: tuple[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """After the password changes (and the pooled connection is gone), the first refused connection makes
    the worker read the secret again, once, and the job completes in the same invocation."""
    arn, secrets = deployed_worker
    direct = create_db(server.url(), sslmode="verify-full", sslrootcert=str(server.ca.pem))
    first = publish(direct, "test-echo", {"n": 1}, queue=queue)
    worker.handler.handler(receive_event(queue), FakeLambdaContext())
    runtime = worker.handler.get_runtime()

    server.set_password("second-Password-2")  # rotation: the database first, then the secret
    secrets.put_secret_value(SecretId=arn, SecretString=server.url())
    runtime.db.engine.dispose()  # the pooler dropped the idle connection while the container was frozen
    runtime._secret_read_at -= 60  # the last read was a minute ago
    direct.dispose()
    direct = create_db(server.url(), sslmode="verify-full", sslrootcert=str(server.ca.pem))
    second = publish(direct, "test-echo", {"n": 2}, queue=queue)
    with caplog.at_level(logging.WARNING, logger="jobstack.worker"):
        response = worker.handler.handler(receive_event(queue), FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    for job in (first, second):
        row = get_job(direct, job.id)
        assert row is not None and row.status.value == "completed"
    rereads = [r for r in caplog.records if r.getMessage() == "re-read the database secret"]
    assert [(r.__dict__["reason"], r.__dict__["url_changed"]) for r in rereads] == [
        ("the database refused the credentials", True)
    ]
    assert all("second-Password-2" not in r.getMessage() for r in caplog.records)
    direct.dispose()


def test_a_secret_older_than_its_maximum_age_is_read_again(
    server: OwnServer, queue: Queue, deployed_worker: tuple[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    direct = create_db(server.url(), sslmode="verify-full", sslrootcert=str(server.ca.pem))
    publish(direct, "test-echo", {}, queue=queue)
    worker.handler.handler(receive_event(queue), FakeLambdaContext())
    runtime = worker.handler.get_runtime()
    runtime._secret_read_at = time.monotonic() - runtime.config.secret_max_age.total_seconds() - 1
    publish(direct, "test-echo", {}, queue=queue)
    with caplog.at_level(logging.WARNING, logger="jobstack.worker"):
        assert worker.handler.handler(receive_event(queue), FakeLambdaContext()) == {"batchItemFailures": []}
    assert [r.__dict__["reason"] for r in caplog.records if r.getMessage() == "re-read the database secret"] == [
        "max age"
    ]
    direct.dispose()
