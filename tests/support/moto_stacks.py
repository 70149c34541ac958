"""A synthesized template created by moto's CloudFormation: its function asset uploaded, the parts moto
cannot create (the bootstrap-version rule, the secret, a KMS key's tags) made deployable."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import boto3

ACCOUNT, REGION = "123456789012", "us-east-1"


def zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return buffer.getvalue()


def deployable(template: dict[str, Any], secret_arn: str) -> dict[str, Any]:
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


def create_stack(template: dict[str, Any], asset_root: Path) -> tuple[dict[str, str], str]:
    """Upload the function asset and create the stack in moto; its outputs and the secret's ARN."""
    [function] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"][:1]
    key = function["Properties"]["Code"]["S3Key"]
    s3 = boto3.client("s3", region_name=REGION)
    bucket = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=zip_directory(asset_root / f"asset.{key.removesuffix('.zip')}"))
    secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="jobs/db", SecretString="postgresql://app:pw@pooler:6543/postgres"
    )["ARN"]
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName="JobsStack-dev",
        TemplateBody=json.dumps(deployable(template, secret_arn)),
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName="JobsStack-dev")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}, secret_arn


def moto_function(name: str, role_arn: str) -> str:
    """A Lambda function in moto (which runs none): what a deployed stack's worker or sweeper is to a reader."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name, Runtime="python3.12", Role=role_arn, Handler="handler.handler",
        Code={"ZipFile": buffer.getvalue()},
    )  # fmt: skip
    return name
