"""The database secret is read from Secrets Manager (moto) as the deployed worker reads it."""

from __future__ import annotations

import boto3
import pytest

from db import ConfigError
from worker.secrets import database_url_from_secret

pytestmark = pytest.mark.integration


def test_the_secret_is_read_from_secrets_manager(aws: None) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="jobs/db", SecretString="postgresql://app:pw@db:6543/postgres")["ARN"]
    assert database_url_from_secret(arn, client) == "postgresql://app:pw@db:6543/postgres"
    with pytest.raises(ConfigError, match="ResourceNotFoundException"):
        database_url_from_secret(arn + "-missing", client)
