"""IAM proven by execution: each role's flows run with credentials limited to exactly its statements.

moto enforces IAM when asked (`INITIAL_NO_AUTH_ACTION_COUNT`: every request after the first N is
authorized against the caller's policies) for credentials of the users and roles it holds, so the
synthesized template's policies are put on roles in moto, assumed with `sts:AssumeRole`, and the real code
runs under them: the publisher's `publish()`, the worker's batch (receive as the event source does,
success, retry, a fresh copy, the DLQ copy, deletes), the sweeper's re-send. Any AccessDenied fails. A
negative test removes one statement and shows its flow then fails, so the enforcement is known to be live.

What moto cannot check, and where it is checked instead: Secrets Manager requests are authorized against
`*` (moto names no resource for them), so GetSecretValue on the exact secret is asserted on the template
(test_template.py); CloudWatch Logs is the runtime's own; resource policies (queue, topic) moto never
evaluates.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin

from db import DB, JobStatus, Queue, get_job, publish, utcnow
from stacks.settings import load_settings
from tests.support.esm import FakeLambdaContext, drain
from tests.support.factories import insert_job
from tests.support.iam import ACCOUNT, REGION, as_aws_authorizes, policies_of, resolve
from tests.support.queues import queue_pair
from tests.support.synth import cdk_context
from tests.support.worker_support import Calls, make_config
from worker import sweeper
from worker.batch import process_batch
from worker.runtime import Runtime

pytestmark = pytest.mark.integration  # real PostgreSQL behind the roles' flows
DEV = load_settings(cdk_context(), "dev")


@pytest.fixture
def account(templates: dict[str, dict[str, Any]], aws: None, pg_db: DB) -> Iterator[dict[str, Any]]:
    """The dev stack's queues, secret and roles in moto; credentials for each role; IAM enforced."""
    template = templates["dev"]
    sqs = boto3.client("sqs", region_name=REGION)
    main, dead = queue_pair(sqs, DEV.queue_name, dlq_name=DEV.dlq_name)
    queue_url, dlq_url = main.url, dead.url
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(Name="db", SecretString="x")["ARN"]
    arns: dict[str, str] = {}
    for logical, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::SQS::Queue":
            arns[logical] = queue_arn if props["QueueName"] == DEV.queue_name else dlq_arn
        elif resource["Type"] == "AWS::SecretsManager::Secret":
            arns[logical] = secret_arn
        elif resource["Type"] == "AWS::Logs::LogGroup":
            arns[logical] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{logical}:*"

    iam = boto3.client("iam", region_name=REGION)
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    ]}  # fmt: skip
    documents = {
        "worker": [resolve(d, arns) for d in policies_of(template, "JobsWorkerRole")],
        "sweeper": [resolve(d, arns) for d in policies_of(template, "JobsSweeperRole")],
        "publisher": [
            resolve(r["Properties"]["PolicyDocument"], arns)
            for r in template["Resources"].values()
            if r["Type"] == "AWS::IAM::ManagedPolicy"
        ],
    }
    assert all(documents.values()), documents
    for role, docs in documents.items():
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
        for index, doc in enumerate(docs):
            iam.put_role_policy(
                RoleName=role, PolicyName=f"{role}-{index}", PolicyDocument=json.dumps(as_aws_authorizes(doc))
            )

    def clients_of(role: str) -> Any:
        creds = boto3.client("sts", region_name=REGION).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName=role
        )["Credentials"]
        return boto3.client(
            "sqs",
            region_name=REGION,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )

    clients = {role: clients_of(role) for role in documents}
    saved_count, saved_requests = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # from here on, every request is authorized
    ActionAuthenticatorMixin.request_count = 0
    try:
        yield {"queue": queue_url, "dlq": dlq_url, "clients": clients, "iam": iam, "documents": documents}
    finally:
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = saved_count
        ActionAuthenticatorMixin.request_count = saved_requests


def _as_esm(client: Any, url: str) -> dict[str, Any]:
    """ReceiveMessage with the function's role, as the event source mapping does."""
    from cli.local.sqs_event import to_record

    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url.rsplit('/', 1)[-1]}"
    messages = client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    ).get("Messages", [])
    return {"Records": [to_record(m, arn) for m in messages]}


def test_every_role_runs_its_flows_with_exactly_its_statements(
    account: dict[str, Any], pg_url: str, pg_db: DB, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    clients = account["clients"]
    web = Queue(clients["publisher"], account["queue"])
    calls.behaviour = lambda ctx: (_ for _ in ()).throw(RuntimeError("again")) if ctx.payload["n"] == 1 else None
    ok = publish(pg_db, "count-calls", {"n": 0}, queue=web)
    retry = publish(pg_db, "count-calls", {"n": 1}, queue=web)
    dead = publish(pg_db, "test-echo", {"fail": "declined"}, queue=web, max_attempts=1)

    worker_queue = Queue(clients["worker"], account["queue"])
    dlq = Queue(clients["worker"], account["dlq"])
    config = make_config(pg_url, worker_queue, dlq, max_receive_count=1, backoff_base_seconds=0)
    runtime = Runtime(config, db=pg_db, sqs=clients["worker"])
    event = _as_esm(clients["worker"], account["queue"])
    assert len(event["Records"]) == 3
    response = process_batch(event, FakeLambdaContext(), runtime)  # max_receive_count 1: the retry is requeued
    assert response == {"batchItemFailures": []}
    for record in event["Records"]:  # the event source deletes what the response acknowledged
        clients["worker"].delete_message(QueueUrl=account["queue"], ReceiptHandle=record["receiptHandle"])
    statuses = {job.id: get_job(pg_db, job.id).status for job in (ok, retry, dead)}  # type: ignore[union-attr]
    assert statuses == {ok.id: JobStatus.COMPLETED, retry.id: JobStatus.FAILED, dead.id: JobStatus.FAILED}

    # A retry within the receive budget is delayed with ChangeMessageVisibilityBatch; a refused call would
    # only be logged (the message then returns after the queue's own timeout), so the log is the evidence.
    again = publish(pg_db, "count-calls", {"n": 1}, queue=web)
    delayed = Runtime(make_config(pg_url, worker_queue, dlq), db=pg_db, sqs=clients["worker"])
    with caplog.at_level(logging.WARNING, logger="jobstack.worker"):
        event = _as_esm(clients["worker"], account["queue"])
        assert {json.loads(r["body"])["jobId"] for r in event["Records"]} == {str(again.id), str(retry.id)}
        assert len(process_batch(event, FakeLambdaContext(), delayed)["batchItemFailures"]) == 2
    assert not [r for r in caplog.records if r.getMessage() == "could not delay a returned message"]

    lost = insert_job(pg_db, created_at=utcnow().replace(year=2020))
    report = sweeper.sweep(Runtime(runtime.config, db=pg_db, sqs=clients["sweeper"]))
    assert report.send_failures == {}
    assert report.resent == {"pending": [lost.id]}

    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")  # read back as the admin
    assert len(drain(Queue(boto3.client("sqs", region_name=REGION), account["dlq"]))) == 1
    left = {
        json.loads(m["Body"])["jobId"] for m in drain(Queue(boto3.client("sqs", region_name=REGION), account["queue"]))
    }
    assert left == {str(lost.id)}  # the sweeper's send; both retries wait out their backoff


def test_enforcement_is_live_without_a_statement_the_flow_fails(
    account: dict[str, Any], pg_url: str, pg_db: DB
) -> None:
    clients, iam = account["clients"], account["iam"]
    with pytest.raises(Exception, match="AccessDenied"):
        clients["sweeper"].receive_message(QueueUrl=account["queue"])  # not the sweeper's to do
    with pytest.raises(Exception, match="AccessDenied"):
        clients["publisher"].send_message(QueueUrl=account["dlq"], MessageBody="{}")  # publishers: main queue only

    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    for index, doc in enumerate(account["documents"]["worker"]):
        doc["Statement"] = [st for st in doc["Statement"] if "sqs:SendMessage" not in st["Action"]]
        iam.put_role_policy(RoleName="worker", PolicyName=f"worker-{index}", PolicyDocument=json.dumps(doc))
    publish(
        pg_db,
        "test-echo",
        {"fail": "declined"},
        queue=Queue(boto3.client("sqs", region_name=REGION), account["queue"]),
        max_attempts=1,
    )
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0

    runtime = Runtime(
        make_config(pg_url, Queue(clients["worker"], account["queue"]), Queue(clients["worker"], account["dlq"])),
        db=pg_db,
        sqs=clients["worker"],
    )
    event = _as_esm(clients["worker"], account["queue"])
    response = process_batch(event, FakeLambdaContext(), runtime)
    assert len(response["batchItemFailures"]) == 1  # the dead letter could not be sent: the message stays
