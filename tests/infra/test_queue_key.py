"""queue_encryption "kms": both queues under one customer-managed key (the stack's, rotated, or yours), and
exactly the two KMS actions SQS needs granted to each sender and receiver, on that key alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from stacks.jobs_construct import Jobs
from stacks.settings import load_settings
from tests.support.synth import assert_checks_pass, cdk_context, of_type, stack_template, synth_app

pytestmark = pytest.mark.infra

EXISTING_KEY = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
KEY_USE = ["kms:Decrypt", "kms:GenerateDataKey"]


def key_context() -> dict[str, Any]:
    """dev: a key the stack creates; staging: the user's own key; prod: SQS-managed, as committed."""
    return cdk_context(
        dev={"queue_encryption": "kms"},
        staging={"queue_encryption": "kms", "queue_kms_key_arn": EXISTING_KEY},
    )


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> cdk.cx_api.CloudAssembly:
    return synth_app(tmp_path_factory.mktemp("kms.out"), key_context())


def kms_statements(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each IAM policy's statements that mention KMS, by the policy's logical id."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for logical_id, policy in of_type(template, kind).items():
            statements = policy["Properties"]["PolicyDocument"]["Statement"]
            out[logical_id] = [s for s in statements if "kms:" in json.dumps(s["Action"])]
    return out


def test_the_created_key_rotates_and_encrypts_both_queues(assembly: cdk.cx_api.CloudAssembly) -> None:
    dev = stack_template(assembly, "dev")
    [(key_id, key)] = of_type(dev, "AWS::KMS::Key").items()
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Delete", "dev destroys; prod would retain (removal_policy)"
    queues = of_type(dev, "AWS::SQS::Queue").values()
    assert len(queues) == 2
    for queue in queues:
        assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert queue["Properties"]["KmsDataKeyReusePeriodSeconds"] == 300
        assert "SqsManagedSseEnabled" not in queue["Properties"]
    assert dev["Outputs"]["QueueKeyArn"]["Value"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_an_existing_key_is_used_and_none_created(assembly: cdk.cx_api.CloudAssembly) -> None:
    staging = stack_template(assembly, "staging")
    assert of_type(staging, "AWS::KMS::Key") == {}
    for queue in of_type(staging, "AWS::SQS::Queue").values():
        assert queue["Properties"]["KmsMasterKeyId"] == EXISTING_KEY
    assert staging["Outputs"]["QueueKeyArn"]["Value"] == EXISTING_KEY


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_worker_sweeper_and_publisher_get_exactly_the_key_use(assembly: cdk.cx_api.CloudAssembly, env: str) -> None:
    t = stack_template(assembly, env)
    key = EXISTING_KEY if env == "staging" else {"Fn::GetAtt": [next(iter(of_type(t, "AWS::KMS::Key"))), "Arn"]}
    by_policy = kms_statements(t)
    assert {k.split("RoleDefault")[0].split("Policy")[0] for k in by_policy} == {
        "JobsWorker", "JobsSweeper", "JobsPublisher",
    }  # fmt: skip
    for statements in by_policy.values():
        assert [(sorted(s["Action"]), s["Resource"]) for s in statements] == [(KEY_USE, key)]


def test_sqs_managed_encryption_grants_no_kms(assembly: cdk.cx_api.CloudAssembly) -> None:
    prod = stack_template(assembly, "prod")
    assert of_type(prod, "AWS::KMS::Key") == {}
    for queue in of_type(prod, "AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert all(statements == [] for statements in kms_statements(prod).values())
    assert "QueueKeyArn" not in prod["Outputs"]


def test_grant_publish_includes_the_key() -> None:
    context = key_context()
    app = cdk.App()
    stack = cdk.Stack(app, "Host")
    jobs = Jobs(stack, "Jobs", settings=load_settings(context, "staging"))
    web_app = iam.Role(stack, "WebApp", assumed_by=iam.AccountRootPrincipal())
    jobs.grant_publish(web_app)
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    [policy] = [p for p in policies.values() if p["Properties"]["Roles"][0]["Ref"].startswith("WebApp")]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("sqs:SendMessage", {"Fn::GetAtt": [statements[0]["Resource"]["Fn::GetAtt"][0], "Arn"]}),
        (KEY_USE, EXISTING_KEY),
    ]
    assert statements[0]["Resource"]["Fn::GetAtt"][0].startswith("JobsQueue")


def test_cdk_nag_passes_and_cfn_lint_finds_nothing(assembly: cdk.cx_api.CloudAssembly, tmp_path: Path) -> None:
    assert_checks_pass(assembly, ("dev", "staging"), tmp_path)
