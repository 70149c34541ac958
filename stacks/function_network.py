"""Optional VPC placement for the worker and sweeper, and the network-interface permissions it costs.

Why this needs care: Lambda creates the functions' network interfaces with the functions' own roles, and
AWS's managed policy for that (AWSLambdaVPCAccessExecutionRole) grants every action on `*`. Here each action
gets the narrowest resource EC2 supports: creating an interface only in the named subnets with the named
security groups, deleting or re-addressing only interfaces in this account and region, and `*` only for the
two Describe calls, which support no resource-level permissions at all.

No lookups: the VPC, subnets and security groups are named by id in cdk.json, so `cdk synth` stays offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Fn, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks import nag
from stacks.settings import Settings

#: EC2 supports no resource-level permissions for these two, so they alone are granted on `*`.
_DESCRIBE_ONLY_ON_ALL = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]


@dataclass(frozen=True)
class FunctionNetwork:
    vpc: ec2.IVpc
    subnets: tuple[ec2.ISubnet, ...]
    security_groups: tuple[ec2.ISecurityGroup, ...]
    #: The group the stack made when cdk.json named none: the database's inbound rule should allow it.
    created_security_group: ec2.SecurityGroup | None

    def function_props(self) -> dict[str, Any]:
        return {
            "vpc": self.vpc,
            "vpc_subnets": ec2.SubnetSelection(subnets=list(self.subnets)),
            "security_groups": list(self.security_groups),
        }

    def grant_interfaces(self, role: iam.Role) -> None:
        """What Lambda needs, through `role`, to attach a function to the subnets."""
        stack = Stack.of(role)

        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="ec2", resource=resource, resource_name=name)

        any_interface = arn("network-interface", "*")
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ec2:CreateNetworkInterface"],
                resources=[
                    *(arn("subnet", s.subnet_id) for s in self.subnets),
                    *(arn("security-group", g.security_group_id) for g in self.security_groups),
                    any_interface,
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                resources=[any_interface],
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=_DESCRIBE_ONLY_ON_ALL, resources=["*"]))
        nag.acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]",
            "Lambda names its network interfaces when it creates them; the grant is limited to this account "
            "and region, and creating one is limited to the subnets and security groups in settings.",
        )
        nag.acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets support no resource-level permissions; "
            "no other action in this role has a wildcard resource.",
        )


def function_network(scope: Construct, settings: Settings) -> FunctionNetwork | None:
    """The functions' VPC placement from settings, or None to run them outside any VPC."""
    if settings.vpc_id is None:
        return None
    # The AZs are a deploy-time token: the subnets are chosen by id, so nothing at synth needs the AZs'
    # names (and looking them up would need AWS credentials).
    vpc = ec2.Vpc.from_vpc_attributes(scope, "Vpc", vpc_id=settings.vpc_id, availability_zones=Fn.get_azs())
    subnets = tuple(
        ec2.Subnet.from_subnet_id(scope, f"Subnet{i}", subnet_id) for i, subnet_id in enumerate(settings.vpc_subnet_ids)
    )
    created = None
    if settings.vpc_security_group_ids:
        groups: tuple[ec2.ISecurityGroup, ...] = tuple(
            ec2.SecurityGroup.from_security_group_id(scope, f"SecurityGroup{i}", group_id, mutable=False)
            for i, group_id in enumerate(settings.vpc_security_group_ids)
        )
    else:
        created = ec2.SecurityGroup(
            scope,
            "FunctionsSecurityGroup",
            vpc=vpc,
            description=f"{settings.stack_name}: worker and sweeper (no inbound; outbound to the database, SQS, "
            "Secrets Manager)",
            allow_all_outbound=True,
        )
        groups = (created,)
    return FunctionNetwork(vpc=vpc, subnets=subnets, security_groups=groups, created_security_group=created)
