"""IAM per pool, proven by execution (as tests/infra/test_iam_execution.py does for one pool): the pooled
template's policies are put on roles in moto with IAM enforced (`INITIAL_NO_AUTH_ACTION_COUNT`), and the
real code runs under them. A pool's worker may receive from its own queue and not from another pool's; the
publisher's managed policy and the sweeper may send to every pool's queue, through a `Router`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin

from cli.local.sqs_event import to_record
from db import DB, JobRequest, JobStatus, Queue, Router, Routes, get_job, publish, utcnow
from db.workflows import publish_group
from tests.support.esm import FakeLambdaContext
from tests.support.factories import insert_job
from tests.support.iam import ACCOUNT, REGION, as_aws_authorizes, policies_of, resolve
from tests.support.synth import cdk_context, of_type, stack_template, synth_app
from tests.support.worker_support import make_config
from tests.support.workflows import Seen
from worker import sweeper
from worker.batch import process_batch
from worker.runtime import Runtime

pytestmark = pytest.mark.integration  # real PostgreSQL behind the roles' flows
POOLS = {"video": {"types": ["test-echo"], "timeout_seconds": 300}, "ledger": {"types": ["ledger.post"], "fifo": True}}


@pytest.fixture
def pooled_account(tmp_path: Path, aws: None, pg_db: DB) -> Iterator[dict[str, Any]]:
    template = stack_template(synth_app(tmp_path / "out", cdk_context(alone=True, dev={"pools": POOLS})), "dev")
    sqs = boto3.client("sqs", region_name=REGION)
    arns: dict[str, str] = {}
    urls: dict[str, str] = {}
    for logical, resource in of_type(template, "AWS::SQS::Queue").items():
        name = resource["Properties"]["QueueName"]
        attributes = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
        urls[name] = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arns[logical] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(Name="db", SecretString="x")["ARN"]
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::SecretsManager::Secret":
            arns[logical] = secret_arn
        elif resource["Type"] == "AWS::Logs::LogGroup":
            arns[logical] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{logical}:*"
    documents = {
        "default-worker": policies_of(template, "JobsWorkerRole"),
        "video-worker": policies_of(template, "JobsPoolVideoWorkerRole"),
        "sweeper": policies_of(template, "JobsSweeperRole"),
        "publisher": [r["Properties"]["PolicyDocument"] for r in of_type(template, "AWS::IAM::ManagedPolicy").values()],
    }
    assert all(documents.values()), documents
    iam = boto3.client("iam", region_name=REGION)
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    ]}  # fmt: skip
    clients = {}
    for role, docs in documents.items():
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
        for index, doc in enumerate(docs):
            policy = json.dumps(as_aws_authorizes(resolve(doc, arns)))
            iam.put_role_policy(RoleName=role, PolicyName=f"{role}-{index}", PolicyDocument=policy)
        creds = boto3.client("sts", region_name=REGION).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName=role
        )["Credentials"]
        clients[role] = boto3.client(
            "sqs", region_name=REGION, aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"],
        )  # fmt: skip
    routes = Routes(
        queues={
            "default": urls["JobsStack-dev-jobs"],
            "video": urls["JobsStack-dev-video-jobs"],
            "ledger": urls["JobsStack-dev-ledger-jobs.fifo"],
        },
        types={"test-echo": "video", "ledger.post": "ledger"},
    )
    saved_count, saved_requests = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # from here on, every request is authorized
    ActionAuthenticatorMixin.request_count = 0
    try:
        yield {"urls": urls, "clients": clients, "routes": routes}
    finally:
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = saved_count
        ActionAuthenticatorMixin.request_count = saved_requests


def test_each_pools_worker_reaches_only_its_queue_and_publishers_reach_every_pool(
    pooled_account: dict[str, Any], pg_url: str, pg_db: DB
) -> None:
    clients, urls, routes = pooled_account["clients"], pooled_account["urls"], pooled_account["routes"]
    web = Router(clients["publisher"], routes)
    job = publish(pg_db, "test-echo", {}, queue=web)  # to the video pool
    publish(pg_db, "test-echo", {}, queue=Router(clients["publisher"], Routes(queues=dict(routes.queues))))  # default

    video = clients["video-worker"].receive_message(QueueUrl=urls["JobsStack-dev-video-jobs"])["Messages"]
    assert [json.loads(m["Body"])["jobId"] for m in video] == [str(job.id)]
    with pytest.raises(Exception, match="AccessDenied"):
        clients["video-worker"].receive_message(QueueUrl=urls["JobsStack-dev-jobs"])  # another pool's queue
    with pytest.raises(Exception, match="AccessDenied"):
        clients["default-worker"].receive_message(QueueUrl=urls["JobsStack-dev-video-jobs"])
    with pytest.raises(Exception, match="AccessDenied"):
        clients["video-worker"].send_message(QueueUrl=urls["JobsStack-dev-jobs-dlq"], MessageBody="{}")
    assert clients["default-worker"].receive_message(QueueUrl=urls["JobsStack-dev-jobs"])["Messages"]

    # The sweeper re-sends a lost job of each pool to that pool's queue (the FIFO one included).
    config = make_config(
        pg_url,
        Router(clients["sweeper"], routes).queue_for("anything"),
        Router(clients["sweeper"], routes).queue_for("anything"),
        routes=routes,
        pool_windows={"default": (120, 600, 10**6), "video": (360, 1200, 10**6), "ledger": (120, 600, 10**6)},
    )
    long_ago = utcnow().replace(year=2020)
    lost = [insert_job(pg_db, type=t, created_at=long_ago) for t in ("test-echo", "ledger.post")]
    report = sweeper.sweep(Runtime(config, db=pg_db, sqs=clients["sweeper"]))
    assert report.send_failures == {}
    assert sorted(report.resent["pending"]) == sorted(j.id for j in lost)


def test_a_worker_sends_a_released_callback_to_another_pools_queue(
    pooled_account: dict[str, Any], pg_url: str, pg_db: DB, seen: Seen
) -> None:
    """A group's last member completes in the default pool; its callback's type runs in the video pool. The
    default pool's worker sends the callback there itself, under its own role (SendMessage on the stack's
    pool queues, nothing else), and the video worker receives it."""
    clients, urls, routes = pooled_account["clients"], pooled_account["urls"], pooled_account["routes"]
    group = publish_group(
        pg_db,
        [JobRequest("wf-member", {"n": 1})],
        then=JobRequest("test-echo", {}),
        queue=Router(clients["publisher"], routes),
    )
    assert group.then is not None
    worker_sqs = clients["default-worker"]
    config = make_config(
        pg_url,
        Queue(worker_sqs, urls["JobsStack-dev-jobs"]),
        Queue(worker_sqs, urls["JobsStack-dev-jobs-dlq"]),
        routes=routes,
        pool_windows={"default": (120, 600, 10**6), "video": (360, 1200, 10**6), "ledger": (120, 600, 10**6)},
    )
    member = worker_sqs.receive_message(
        QueueUrl=urls["JobsStack-dev-jobs"], AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    event = {"Records": [to_record(m, f"arn:aws:sqs:{REGION}:{ACCOUNT}:JobsStack-dev-jobs") for m in member]}
    assert process_batch(event, FakeLambdaContext(), Runtime(config, db=pg_db, sqs=worker_sqs)) == {
        "batchItemFailures": []
    }
    callback = clients["video-worker"].receive_message(QueueUrl=urls["JobsStack-dev-video-jobs"])["Messages"]
    assert [json.loads(m["Body"])["jobId"] for m in callback] == [str(group.then.id)]
    sent = get_job(pg_db, group.then.id)
    assert sent is not None and sent.status is JobStatus.PENDING and sent.send_count == 1
