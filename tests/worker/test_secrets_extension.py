"""Reading the database secret through the Parameters and Secrets Lambda Extension (a local fake of its
documented endpoint, cli/fake_secrets_extension.py) or, when it is absent or a read must be fresh,
through Secrets Manager (moto)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli.fake_secrets_extension import FakeExtension, fake_extension
from db import ConfigError
from worker.secret_sources import PORT_VARIABLE
from worker.secrets import database_url_from_secret

pytestmark = pytest.mark.integration
URL = "postgresql://app:Extension-Pass-9@db.example:6543/jobs"
TOKEN = "session-token-of-the-function"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def secret(aws: None) -> str:
    return str(boto3.client("secretsmanager").create_secret(Name="jobs-db", SecretString=URL)["ARN"])


@pytest.fixture
def extension(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeExtension]:
    with fake_extension(TOKEN) as fake:
        monkeypatch.setenv(PORT_VARIABLE, str(fake.port))
        monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
        yield fake


def test_the_secret_is_read_through_the_extension_with_the_functions_session_token(
    secret: str, extension: FakeExtension
) -> None:
    assert database_url_from_secret(secret) == URL
    assert database_url_from_secret(secret) == URL
    assert extension.requests == [secret, secret]


def test_a_fresh_read_goes_to_secrets_manager_past_the_extensions_cache(secret: str, extension: FakeExtension) -> None:
    """After a rotation the extension serves the old value for up to its TTL; refused credentials must not
    be answered with the same refused password."""
    assert database_url_from_secret(secret) == URL
    rotated = URL.replace("Extension-Pass-9", "Rotated-Pass-10")
    boto3.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=rotated)
    assert database_url_from_secret(secret) == URL  # the cache, as the real extension would
    assert database_url_from_secret(secret, fresh=True) == rotated
    assert extension.requests == [secret, secret]


def test_an_error_the_extension_reports_is_one_line_naming_the_status_and_no_secret(
    secret: str, extension: FakeExtension, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "another-token")
    with pytest.raises(ConfigError) as caught:
        database_url_from_secret(secret)
    message = str(caught.value)
    assert "HTTP 401" in message and secret in message and "IAM role" in message
    assert "\n" not in message and "Extension-Pass-9" not in message
    with pytest.raises(ConfigError, match="HTTP 400 ResourceNotFoundException"):
        monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
        database_url_from_secret(secret.replace("jobs-db", "no-such-secret"))


def test_without_an_answer_on_the_port_the_sdk_reads_it_and_says_so(
    secret: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with fake_extension(TOKEN) as gone:
        port = gone.port  # a port nothing listens on once the server is closed
    monkeypatch.setenv(PORT_VARIABLE, str(port))
    with caplog.at_level(logging.WARNING, logger="jobstack.worker"):
        assert database_url_from_secret(secret) == URL
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["secrets extension did not answer; reading the secret with the SDK"]


def test_through_the_extension_a_cold_worker_never_imports_boto3(secret: str, extension: FakeExtension) -> None:
    """The point of the extension: on the happy path nothing else needs the SDK, so INIT skips it."""
    probe = (
        "import sys; from worker.secrets import database_url_from_secret as read; "
        f"assert read({secret!r}) == {URL!r}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))"
    )
    env: dict[str, Any] = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    assert extension.requests == [secret]
