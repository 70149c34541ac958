"""CloudFormation string limits that `cdk synth` does not enforce, checked once the construct is built.

A value over one of these synthesizes with at most a warning and passes cdk-nag; CloudFormation then fails
the deploy half-way and rolls back (cfn-lint's E3033 sees it too, after the fact). Checked at synth
instead, with one line naming the resource, the property, its length and the limit. Each limit is the
property's maxLength in the resource's CloudFormation schema.
"""

from __future__ import annotations

from aws_cdk import Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.settings import SettingsError

#: (L1 class, Python attribute, CloudFormation property, maximum length).
LIMITS: tuple[tuple[type, str, str, int], ...] = (
    (cw.CfnAlarm, "alarm_description", "AlarmDescription", 1024),
    (lambda_.CfnFunction, "description", "Description", 256),
    (iam.CfnRole, "description", "Description", 1000),
    (iam.CfnManagedPolicy, "description", "Description", 1000),
    (scheduler.CfnSchedule, "description", "Description", 512),
    (events.CfnRule, "description", "Description", 512),
    (sns.CfnTopic, "display_name", "DisplayName", 100),
)


def check_limits(scope: Construct) -> None:
    """SettingsError in one line for the first value over its limit under `scope`."""
    for construct in scope.node.find_all():
        for kind, attribute, name, limit in LIMITS:
            if not isinstance(construct, kind):
                continue
            value = getattr(construct, attribute)
            if isinstance(value, str) and not Token.is_unresolved(value) and len(value) > limit:
                raise SettingsError(
                    f"{construct.node.path}: {name} is {len(value)} characters, over CloudFormation's {limit}; "
                    "shorten what it is built from (a pool's or a schedule's name)"
                )
