"""Deploy rehearsal: the synthesized dev template, created by moto's CloudFormation.

moto has no CloudFormation support for queue/topic policies, alarms or Secrets Manager secrets (it skips
them with a warning), so the rehearsal swaps the created secret for an existing one and checks what moto
does create: both queues with their redrive settings, the functions, and the event source mapping. (It
also ignores the DLQ's RedriveAllowPolicy; tests/infra/test_template.py asserts that one.) With the VPC
settings, moto's EC2 holds the VPC the template names, and the functions must land in its subnets.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import pytest

from stacks.jobs_stack import JobsStack
from stacks.settings import load_settings
from tests.infra.conftest import cdk_context

pytestmark = [
    pytest.mark.infra,
    pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning"),
]
ACCOUNT, REGION = "123456789012", "us-east-1"


def _zip(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return buffer.getvalue()


def _deployable(template: dict[str, Any], secret_arn: str) -> dict[str, Any]:
    """Drop the bootstrap-version check (no bootstrap stack in moto) and use an existing secret; drop a KMS
    key's tags, which moto's CloudFormation cannot read."""
    template = json.loads(json.dumps(template))
    template.pop("Rules", None)
    template.get("Parameters", {}).pop("BootstrapVersion", None)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::KMS::Key":  # moto reads these tags in the KMS API's shape (TagKey), not CFN's
            resource["Properties"].pop("Tags", None)
    [secret_id] = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::SecretsManager::Secret"]
    del template["Resources"][secret_id]
    deployable: dict[str, Any] = json.loads(
        json.dumps(template).replace(json.dumps({"Ref": secret_id}), json.dumps(secret_arn))
    )
    return deployable


def _create_stack(template: dict[str, Any], asset_root: Path) -> tuple[dict[str, str], str]:
    """Upload the function asset and create the stack in moto; its outputs and the secret's ARN."""
    [function] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"][:1]
    key = function["Properties"]["Code"]["S3Key"]
    s3 = boto3.client("s3", region_name=REGION)
    bucket = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=_zip(asset_root / f"asset.{key.removesuffix('.zip')}"))
    secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="jobs/db", SecretString="postgresql://app:pw@pooler:6543/postgres"
    )["ARN"]
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName="JobsStack-dev",
        TemplateBody=json.dumps(_deployable(template, secret_arn)),
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName="JobsStack-dev")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}, secret_arn


def test_the_dev_template_creates_queues_functions_and_mapping(
    aws: None, cloud_assembly: cdk.cx_api.CloudAssembly, templates: dict[str, dict[str, Any]]
) -> None:
    settings = load_settings(cdk_context(), "dev")
    outputs, secret_arn = _create_stack(templates["dev"], Path(cloud_assembly.directory))

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
    outputs, _ = _create_stack(assembly.get_stack_by_name("JobsStack-dev").template, Path(assembly.directory))
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
