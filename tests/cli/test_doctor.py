"""`jobstack doctor --env dev` against an environment built in moto and a PostgreSQL with TLS of the test's own.

The "stack" is a CloudFormation stack in moto whose outputs name queues, a secret, functions and a topic
made the way JobsStack makes them. moto implements no `lambda:GetAccountSettings`, so the account's limits
come from a stand-in answering in the API's documented shape (AccountLimit.ConcurrentExecutions,
UnreservedConcurrentExecutions); every other call is moto's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from cli.main import main
from cli.target import Target
from db import create_db
from db.migrate import downgrade, head, upgrade
from tests.support.moto_stacks import moto_function
from tests.support.own_postgres import OwnServer, make_authority, migrated_own_postgres
from tests.support.queues import queue_pair
from tests.support.synth import settings_of

pytestmark = pytest.mark.integration
REGION = "us-east-1"
DEV = settings_of("dev")
assert DEV.reserved_concurrency is not None
RESERVED: int = DEV.reserved_concurrency
REGION_LINE = (
    f"✓ region: {REGION} has every layer the settings attach: arm64 layer of the Parameters and Secrets extension"
)


class AccountLimits:
    """lambda:GetAccountSettings as AWS answers it; the rest of the client is moto's."""

    def __init__(self, client: Any, quota: int, unreserved: int) -> None:
        self._client, self.quota, self.unreserved = client, quota, unreserved

    def get_account_settings(self) -> dict[str, Any]:
        return {"AccountLimit": {"ConcurrentExecutions": self.quota, "UnreservedConcurrentExecutions": self.unreserved}}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture(scope="module")
def tls_server() -> Iterator[OwnServer]:
    with migrated_own_postgres() as pg:
        yield pg


def deploy(*, secret: str, max_receive_count: int = DEV.max_receive_count, subscribe: bool = True) -> None:
    """What `cdk deploy JobsStack-dev` leaves that the doctor reads."""
    sqs = boto3.client("sqs", region_name=REGION)
    main, dead = queue_pair(
        sqs, DEV.queue_name, dlq_name=DEV.dlq_name, max_receive_count=max_receive_count,
        VisibilityTimeout=str(DEV.visibility_timeout_seconds), MessageRetentionPeriod=str(DEV.retention_days * 86_400),
    )  # fmt: skip
    queue_url, dlq_url = main.url, dead.url
    secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(Name="db", SecretString=secret)["ARN"]
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="fn", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )["Role"]["Arn"]
    worker, sweeper = moto_function("worker", role), moto_function("sweeper", role)
    boto3.client("lambda", region_name=REGION).put_function_concurrency(
        FunctionName=worker, ReservedConcurrentExecutions=DEV.reserved_concurrency
    )
    outputs = {
        "QueueUrl": queue_url, "DeadLetterQueueUrl": dlq_url, "DatabaseSecretArn": secret_arn,
        "WorkerFunctionName": worker, "SweeperFunctionName": sweeper, "EventSourceMappingId": "esm-1",
        "WorkerLogGroupName": "JobsStack-dev-WorkerLogs",
    }  # fmt: skip
    template = {
        "Resources": {"AlarmTopic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            **{key: {"Value": value} for key, value in outputs.items()},
            "AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}},
        },
    }
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(StackName=DEV.stack_name, TemplateBody=json.dumps(template))
    if subscribe:
        topic = next(o["OutputValue"] for o in cfn.describe_stacks(StackName=DEV.stack_name)["Stacks"][0]["Outputs"]
                     if o["OutputKey"] == "AlarmTopicArn")  # fmt: skip
        inbox = sqs.get_queue_attributes(QueueUrl=sqs.create_queue(QueueName="pager")["QueueUrl"],
                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]  # fmt: skip
        boto3.client("sns", region_name=REGION).subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox)


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch, aws: None) -> AccountLimits:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("DATABASE_URL", "QUEUE_URL", "DLQ_URL"):
        monkeypatch.delenv(name, raising=False)
    limits = AccountLimits(None, quota=1000, unreserved=1000 - RESERVED)
    original = Target.client

    def client(self: Target, service: str) -> Any:
        real = original(self, service)
        if service == "lambda":
            limits._client = real
            return limits
        return real

    monkeypatch.setattr(Target, "client", client)
    return limits


def doctor(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["doctor", "--env", "dev", *extra])
    return code, capsys.readouterr().out.strip().splitlines()


def test_a_healthy_environment_passes_every_check(
    tls_server: OwnServer, account: AccountLimits, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(secret=tls_server.url())
    code, lines = doctor(capsys, "--ca-file", str(tls_server.ca.pem))
    assert code == 0, lines
    assert [line[0] for line in lines] == ["✓"] * 6
    assert f"database: answers (TLS verify-full), migrations at head ({head()})" in "\n".join(lines)
    assert all(tls_server.password not in line for line in lines)


def test_each_problem_is_one_line_with_what_to_do(
    tls_server: OwnServer, account: AccountLimits, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:

    deploy(secret=tls_server.url(), max_receive_count=3, subscribe=False)
    account.quota, account.unreserved = 100, 100 - RESERVED
    wrong_ca = make_authority(tmp_path, "not-the-servers")
    code, lines = doctor(capsys, "--ca-file", str(wrong_ca.pem))
    assert code == 1
    by_check = {line[2:].split(":", 1)[0]: line for line in lines}
    assert by_check["database"].startswith("✗ database: database TLS check failed")
    assert str(wrong_ca.pem) in by_check["database"]
    assert by_check["queues"] == (
        "✗ queues: maxReceiveCount is 3, settings say 5 — deploy the current settings: cdk deploy"
    )
    assert by_check["Lambda concurrency"].startswith(
        f"✗ Lambda concurrency: the account's quota is 100; reserving {RESERVED + 1} would leave"
    )
    assert "✗ alarms: the topic has no confirmed subscription (no alarm_emails are set)" in by_check["alarms"]
    assert by_check["database secret"].startswith("✓")


def test_an_empty_secret_and_a_database_behind_on_migrations(
    tls_server: OwnServer, account: AccountLimits, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(secret=" ")
    code, lines = doctor(capsys, "--ca-file", str(tls_server.ca.pem))
    assert code == 1
    assert any(line.startswith("✗ database secret: database secret arn:") and "is empty" in line for line in lines)
    assert "✗ database: not checked: no readable secret — fix the secret first" in lines

    db = create_db(tls_server.url(sslmode="require"))
    downgrade(db, "0001")
    try:
        code, lines = doctor(capsys, "--ca-file", str(tls_server.ca.pem), "--database-url", tls_server.url())
        assert (
            f"✗ database: answers (TLS verify-full) at migration 0001, not {head()} — run: jobstack migrate --env dev"
            in lines
        )
    finally:
        upgrade(db)
        db.dispose()


def test_doctor_needs_an_environment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 2
    assert capsys.readouterr().err.strip() == "error: doctor checks a deployed environment: pass --env ENV"


@pytest.mark.parametrize(
    ("quota", "fix"),
    [
        (10, "to at least 108 (no reservation fits below that: the sweeper alone reserves 1)"),
        (105, "to at least 108, or lower max_concurrency so the workers reserve at most 4 together"),
    ],
)
def test_before_deploy_refuses_reservations_the_account_cannot_grant_in_one_line(
    account: AccountLimits, capsys: pytest.CaptureFixture[str], quota: int, fix: str
) -> None:
    """Nothing deployed yet (moto has no stack): a new account at the default quota of 10 keeps all 10
    unreserved, and Lambda refuses any reservation that leaves fewer than 100
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html): CloudFormation would fail the
    deploy half-way. dev reserves max_concurrency + 2 for its worker and 1 for the sweeper."""
    account.quota, account.unreserved = quota, quota
    code, lines = doctor(capsys, "--before-deploy")
    assert code == 1
    assert lines == [
        REGION_LINE,
        f"✗ Lambda concurrency: the account's quota is {quota}; reserving {RESERVED + 1} would leave "
        f"{quota - RESERVED - 1} unreserved (Lambda keeps 100) — ask Service Quotas to raise Lambda's Concurrent "
        f"executions (L-B99A9384) {fix}" + (" (each reserves max_concurrency + 2)" if "lower" in fix else ""),
    ]


def test_before_deploy_counts_an_existing_deployments_reservations_back(
    tls_server: OwnServer, account: AccountLimits, capsys: pytest.CaptureFixture[str]
) -> None:
    """A redeploy replaces the stack's own reservations; only the rest of the account must leave room."""
    deploy(secret=tls_server.url())  # the worker already reserves RESERVED
    account.quota, account.unreserved = 100 + RESERVED + 1, 100 + 1  # tight, but ours are already counted
    code, lines = doctor(capsys, "--before-deploy")
    assert (code, lines) == (
        0,
        [
            REGION_LINE,
            f"✓ Lambda concurrency: quota {100 + RESERVED + 1}; reserving {RESERVED + 1} leaves 100 unreserved",
        ],
    )
