"""`jobstack local --env dev --endpoint-url URL` works the deployed environment's queues and database (read
from the stack's outputs and secret, through the endpoint), as the event source would; it used to ignore
both and run an embedded queue and database."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from cli.local.embedded import EmbeddedSqs, create_queues
from cli.main import main
from cli.target import stack_settings
from db import DB, JobRequest, JobStatus, Queue, get_job, publish_many
from tests.support.queues import moto_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedSqs]:
    for name in ("DATABASE_URL", "QUEUE_URL", "DLQ_URL", "JOBS_ENV"):
        monkeypatch.delenv(name, raising=False)
    with moto_server(monkeypatch) as server:
        yield server


def test_jobs_local_works_the_deployed_queues_and_database(
    emulator: EmbeddedSqs, pg_url: str, pg_db: DB, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = emulator.endpoint_url.replace("127.0.0.1", "localhost")
    client = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    queue_url, dlq_url = create_queues(client, stack_settings("dev").default_pool)
    secrets = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")
    secret_arn = secrets.create_secret(Name="jobs-db", SecretString=pg_url)["ARN"]
    outputs = {"QueueUrl": queue_url, "DeadLetterQueueUrl": dlq_url, "DatabaseSecretArn": secret_arn}
    template = {
        "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    boto3.client("cloudformation", endpoint_url=endpoint, region_name="us-east-1").create_stack(
        StackName="JobsStack-dev", TemplateBody=json.dumps(template)
    )
    jobs = publish_many(pg_db, [JobRequest("test-echo", {"n": n}) for n in range(12)], queue=Queue(client, queue_url))

    code = main(["local", "--env", "dev", "--endpoint-url", endpoint, "--until-empty", "--json", "--concurrency", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["deleted"] == 12
    assert {get_job(pg_db, j.id).status for j in jobs} == {JobStatus.COMPLETED}  # type: ignore[union-attr]
