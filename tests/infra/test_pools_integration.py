"""The pooled template deployed in moto, and a publish through its Routes output reaching the right pool's
queue: real PostgreSQL for the job's row, so this runs in the integration tier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import pytest

from db import Router, Routes, publish
from stacks.jobs_stack import JobsStack
from stacks.settings import load_settings
from tests.support.moto_stacks import REGION, create_stack
from tests.support.synth import VIDEO_AND_LEDGER_POOLS as POOLS
from tests.support.synth import cdk_context

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")]


def test_the_pooled_template_deploys_in_moto_and_its_routes_output_routes_a_publish(
    aws: None, tmp_path: Path, pg_db: Any
) -> None:
    context = cdk_context(dev={"pools": POOLS})
    app = cdk.App(outdir=str(tmp_path), context=context)
    JobsStack(app, "JobsStack-dev", settings=load_settings(context, "dev"))
    assembly = app.synth()
    outputs, _ = create_stack(assembly.get_stack_by_name("JobsStack-dev").template, Path(assembly.directory))

    sqs = boto3.client("sqs", region_name=REGION)
    ledger = sqs.get_queue_attributes(QueueUrl=outputs["PoolLedgerQueueUrl"], AttributeNames=["All"])["Attributes"]
    assert ledger["FifoQueue"] == "true"
    video = sqs.get_queue_attributes(QueueUrl=outputs["PoolVideoQueueUrl"], AttributeNames=["All"])["Attributes"]
    assert int(video["VisibilityTimeout"]) == 6 * 900
    lambda_ = boto3.client("lambda", region_name=REGION)
    assert lambda_.get_function_configuration(FunctionName=outputs["PoolVideoWorkerFunctionName"])["Timeout"] == 900
    [mapping] = lambda_.list_event_source_mappings(FunctionName=outputs["PoolLedgerWorkerFunctionName"])[
        "EventSourceMappings"
    ]
    assert mapping["EventSourceArn"] == ledger["QueueArn"]

    # moto's event source mappings invoke on send, and its Lambda needs Docker: paused, as an operator would.
    for page in lambda_.list_event_source_mappings()["EventSourceMappings"]:
        lambda_.update_event_source_mapping(UUID=page["UUID"], Enabled=False)
    router = Router(sqs, Routes.from_json(outputs["Routes"]))
    assert router.routes.queues == {
        "default": outputs["QueueUrl"], "video": outputs["PoolVideoQueueUrl"], "ledger": outputs["PoolLedgerQueueUrl"]
    }  # fmt: skip
    job = publish(pg_db, "test-echo", {"hello": "pools"}, queue=router)
    got = sqs.receive_message(QueueUrl=outputs["PoolVideoQueueUrl"], MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["jobId"] for m in got] == [str(job.id)]
    assert "Messages" not in sqs.receive_message(QueueUrl=outputs["QueueUrl"], MaxNumberOfMessages=10)
