"""`jobstack doctor` in a VPC: the functions reach AWS only through their subnets' routes. Reported: a VPC with
tracing on has no route to X-Ray (or the OTLP endpoint) and spans are dropped silently; nothing said so.

Lambda's functions in a VPC get no public address, so an internet gateway route does not reach anything:
only a NAT gateway (or another hop that does the translation) or interface endpoints do
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html). moto answers EC2's describe
calls; the rule applied to its answers is AWS's."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import boto3
import pytest

from cli.commands.doctor import Doctor
from cli.target import Target
from tests.support.synth import settings_of

pytestmark = pytest.mark.integration
REGION = "us-east-1"


def _vpc() -> tuple[Any, str, list[str], str]:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"{REGION}{zone}")["Subnet"][
            "SubnetId"
        ]
        for n, zone in ((1, "a"), (2, "b"))
    ]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    for subnet in subnets:
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    return ec2, vpc, subnets, table


def test_otel_in_a_vpc_needs_a_way_to_x_ray_and_the_doctor_names_it(aws: None) -> None:
    ec2, vpc, subnets, table = _vpc()
    settings = replace(settings_of("dev"), vpc_id=vpc, vpc_subnet_ids=tuple(subnets), tracing="otel")
    doctor = Doctor(Target(region=REGION), settings)

    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    check = doctor.network()  # an internet gateway reaches nothing from a function without a public address
    assert not check.ok and "\n" not in check.line()
    assert check.detail == (
        "the functions' subnets have no default route out and no interface endpoint for sqs, secretsmanager, "
        "xray: spans are dropped without a word"
    )

    for service in ("sqs", "secretsmanager"):
        ec2.create_vpc_endpoint(
            VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.{service}", VpcEndpointType="Interface",
            SubnetIds=subnets,
        )  # fmt: skip
    assert doctor.network().detail.endswith("no interface endpoint for xray: spans are dropped without a word")
    assert Doctor(Target(region=REGION), replace(settings, tracing="off")).network().ok, "X-Ray only for otel"
    ec2.create_vpc_endpoint(
        VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.xray", VpcEndpointType="Interface", SubnetIds=subnets
    )
    assert doctor.network().ok
    outside = replace(settings, otel_exporter_endpoint="https://otlp.example.com/v1/traces")
    assert "https://otlp.example.com/v1/traces" in Doctor(Target(region=REGION), outside).network().detail

    nat = ec2.create_nat_gateway(SubnetId=subnets[0])["NatGateway"]["NatGatewayId"]
    ec2.replace_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    check = Doctor(Target(region=REGION), outside).network()
    assert check.ok and check.detail.startswith("every subnet has a default route out")
