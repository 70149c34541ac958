"""Deploy rehearsal: the synthesized dev template, created by moto's CloudFormation.

moto has no CloudFormation support for queue/topic policies, alarms or Secrets Manager secrets (it skips
them with a warning), so the rehearsal swaps the created secret for an existing one and checks what moto
does create: both queues with their redrive settings, the functions, and the event source mapping. (It
also ignores the DLQ's RedriveAllowPolicy; tests/infra/test_template.py asserts that one.) With the VPC
settings, moto's EC2 holds the VPC the template names, and the functions must land in its subnets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import pytest

from stacks.jobs_stack import JobsStack
from stacks.settings import load_settings
from tests.support.moto_stacks import REGION, create_stack
from tests.support.synth import cdk_context

pytestmark = [
    pytest.mark.infra,
    pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning"),
]


def test_the_dev_template_creates_queues_functions_and_mapping(
    aws: None, cloud_assembly: cdk.cx_api.CloudAssembly, templates: dict[str, dict[str, Any]]
) -> None:
    settings = load_settings(cdk_context(), "dev")
    outputs, secret_arn = create_stack(templates["dev"], Path(cloud_assembly.directory))

    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.get_queue_attributes(QueueUrl=outputs["QueueUrl"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=outputs["DeadLetterQueueUrl"], AttributeNames=["All"])["Attributes"]
    redrive = json.loads(queue["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == settings.max_receive_count
    assert int(queue["VisibilityTimeout"]) == settings.visibility_timeout_seconds
    assert int(queue["ReceiveMessageWaitTimeSeconds"]) == 20
    assert int(dlq["MessageRetentionPeriod"]) == 14 * 86400

    lambda_ = boto3.client("lambda", region_name=REGION)
    worker = lambda_.get_function_configuration(FunctionName=outputs["WorkerFunctionName"])
    assert worker["Runtime"] == "python3.13"
    assert worker["Handler"] == "worker.handler.handler"
    assert worker["Environment"]["Variables"]["DATABASE_SECRET_ARN"] == secret_arn
    [mapping] = lambda_.list_event_source_mappings(FunctionName=outputs["WorkerFunctionName"])["EventSourceMappings"]
    assert mapping["EventSourceArn"] == queue["QueueArn"]
    assert mapping["BatchSize"] == settings.batch_size
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": settings.max_concurrency}
    assert mapping["UUID"] == outputs["EventSourceMappingId"]


def _create_dev_with(outdir: Path, **overrides: Any) -> dict[str, str]:
    """Synthesize JobsStack-dev with these settings changed, and create it in moto; its outputs."""
    context = cdk_context(dev=overrides)
    app = cdk.App(outdir=str(outdir), context=context)
    JobsStack(app, "JobsStack-dev", settings=load_settings(context, "dev"))
    assembly = app.synth()
    outputs, _ = create_stack(assembly.get_stack_by_name("JobsStack-dev").template, Path(assembly.directory))
    return outputs


def test_the_dev_template_with_a_kms_key_encrypts_both_queues_with_it(aws: None, tmp_path: Path) -> None:
    outputs = _create_dev_with(tmp_path, queue_encryption="kms")

    key_arn = outputs["QueueKeyArn"]
    assert boto3.client("kms", region_name=REGION).get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"]
    sqs = boto3.client("sqs", region_name=REGION)
    for url in (outputs["QueueUrl"], outputs["DeadLetterQueueUrl"]):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["KmsMasterKeyId"] == key_arn
        assert attributes["KmsDataKeyReusePeriodSeconds"] == "300"


def test_the_dev_template_with_a_vpc_puts_both_functions_in_its_subnets(aws: None, tmp_path: Path) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    outputs = _create_dev_with(tmp_path, vpc_id=vpc_id, vpc_subnet_ids=subnet_ids)

    group_id = outputs["FunctionsSecurityGroupId"]
    [group] = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert group["VpcId"] == vpc_id
    assert group["IpPermissions"] == [], "nothing may connect to the functions"
    lambda_ = boto3.client("lambda", region_name=REGION)
    for name in (outputs["WorkerFunctionName"], outputs["SweeperFunctionName"]):
        config = lambda_.get_function_configuration(FunctionName=name)["VpcConfig"]
        assert sorted(config["SubnetIds"]) == sorted(subnet_ids)
        assert config["SecurityGroupIds"] == [group_id]
