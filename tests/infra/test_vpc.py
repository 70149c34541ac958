"""The optional VPC: functions in the named subnets, network-interface permissions as narrow as EC2 allows,
cdk-nag's findings acknowledged only where EC2 leaves no choice, and a template cfn-lint accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

import stacks.nag
from stacks.app_factory import build_app
from tests.support.synth import assert_checks_pass, cdk_context, of_type, stack_template, synth_app

pytestmark = pytest.mark.infra

VPC = "vpc-0123456789abcdef0"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
EXISTING_GROUP = "sg-0a1b2c3d4e5f60718"


def vpc_context() -> dict[str, Any]:
    """dev: a VPC whose security group the stack creates; staging: a VPC with the user's own group."""
    return cdk_context(
        dev={"vpc_id": VPC, "vpc_subnet_ids": SUBNETS},
        staging={"vpc_id": VPC, "vpc_subnet_ids": SUBNETS[:1], "vpc_security_group_ids": [EXISTING_GROUP]},
    )


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> cdk.cx_api.CloudAssembly:
    return synth_app(tmp_path_factory.mktemp("vpc.out"), vpc_context())


def statements_by_role(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_role: dict[str, list[dict[str, Any]]] = {}
    for policy in of_type(template, "AWS::IAM::Policy").values():
        role = policy["Properties"]["Roles"][0]["Ref"]
        by_role.setdefault(role, []).extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return by_role


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_both_functions_run_in_the_subnets_with_the_created_group(assembly: cdk.cx_api.CloudAssembly) -> None:
    dev = stack_template(assembly, "dev")
    [(group_id, group)] = of_type(dev, "AWS::EC2::SecurityGroup").items()
    assert group["Properties"]["VpcId"] == VPC
    assert "SecurityGroupIngress" not in group["Properties"], "nothing may connect to the functions"
    functions = of_type(dev, "AWS::Lambda::Function").values()
    assert len(functions) == 2
    for function in functions:
        assert function["Properties"]["VpcConfig"] == {
            "SubnetIds": SUBNETS,
            "SecurityGroupIds": [{"Fn::GetAtt": [group_id, "GroupId"]}],
        }
    # The database's inbound rule needs the group: it is an output.
    assert dev["Outputs"]["FunctionsSecurityGroupId"]["Value"] == {"Fn::GetAtt": [group_id, "GroupId"]}


def test_the_users_own_security_group_is_used_and_none_created(assembly: cdk.cx_api.CloudAssembly) -> None:
    staging = stack_template(assembly, "staging")
    assert of_type(staging, "AWS::EC2::SecurityGroup") == {}
    assert "FunctionsSecurityGroupId" not in staging["Outputs"]
    for function in of_type(staging, "AWS::Lambda::Function").values():
        assert function["Properties"]["VpcConfig"] == {"SubnetIds": SUBNETS[:1], "SecurityGroupIds": [EXISTING_GROUP]}
    for statements in statements_by_role(staging).values():
        [create] = [s for s in statements if s["Action"] == "ec2:CreateNetworkInterface"]
        resources = json.dumps(create["Resource"])
        assert f":security-group/{EXISTING_GROUP}" in resources
        assert f":subnet/{SUBNETS[0]}" in resources
        assert SUBNETS[1] not in resources


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_network_permissions_are_as_narrow_as_ec2_allows(assembly: cdk.cx_api.CloudAssembly, env: str) -> None:
    """Only the two Describe calls (no resource-level support) get `*`; no managed policy is attached."""
    t = stack_template(assembly, env)
    for role in of_type(t, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
    by_role = statements_by_role(t)
    assert len(by_role) == 2, "the worker's and the sweeper's roles"
    for statements in by_role.values():
        wildcard = [s for s in statements if "*" in listed(s["Resource"])]
        assert [sorted(listed(s["Action"])) for s in wildcard] == [
            ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
        ]
        assert all(s["Resource"] == "*" for s in wildcard), "the wildcard statement names nothing else"
        ec2_actions = {a for s in statements for a in listed(s["Action"]) if a.startswith("ec2:")}
        assert ec2_actions == {
            "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
        }  # fmt: skip
        for statement in statements:
            if "ec2:DeleteNetworkInterface" in listed(statement["Action"]):
                assert json.dumps(statement["Resource"]).endswith(':network-interface/*"]]}')


def test_an_environment_without_a_vpc_is_unchanged(assembly: cdk.cx_api.CloudAssembly) -> None:
    prod = stack_template(assembly, "prod")
    assert of_type(prod, "AWS::EC2::SecurityGroup") == {}
    for function in of_type(prod, "AWS::Lambda::Function").values():
        assert "VpcConfig" not in function["Properties"]
    assert "ec2:" not in json.dumps(statements_by_role(prod))


def test_cdk_nag_passes_and_cfn_lint_finds_nothing(assembly: cdk.cx_api.CloudAssembly, tmp_path: Path) -> None:
    assert_checks_pass(assembly, ("dev", "staging"), tmp_path)


def test_the_network_acknowledgements_are_each_needed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(stacks.nag, "acknowledge", lambda *_args: None)
    app = build_app(cdk.App(outdir=str(tmp_path), context=vpc_context()))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    paths = {
        v["ruleName"]: {c["constructPath"] for c in v["violatingConstructs"]}
        for r in report["pluginReports"]
        for v in r["violations"]
    }
    network_rules = {
        "AwsSolutions-IAM5[Resource::*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]",
    }
    assert set(paths) == {"AwsSolutions-SMG4", "AwsSolutions-L1", *network_rules}
    for rule in network_rules:  # only the VPC environments' roles, both of them
        assert {p.rsplit("/", 2)[0] for p in paths[rule]} == {
            f"JobsStack-{env}/Jobs/{role}" for env in ("dev", "staging") for role in ("WorkerRole", "SweeperRole")
        }, paths[rule]
