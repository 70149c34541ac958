"""Where AWS's Parameters and Secrets Lambda Extension can be attached, decided at synth.

aws-cdk-lib knows the extension's layer ARN per region and architecture (its region facts; one AWS account
publishes the layer per region). An environment-bound stack in a region without a layer gets no template
at all: one line says to turn the extension off. An environment-agnostic stack carries the whole map
(`Fn::FindInMap`), and CloudFormation refuses the template in a region the map lacks; the stack's
`SecretsExtensionRegion` rule makes that refusal say what to do, before anything is created
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html).
"""

from __future__ import annotations

from functools import cache

from aws_cdk import Aws, CfnRule, CfnRuleAssertion, Fn, Stack, Token, region_info
from aws_cdk import aws_lambda as lambda_

from stacks.settings import Settings, SettingsError

VERSION = lambda_.ParamsAndSecretsVersions.V1_0_103
#: The layer's version as aws-cdk-lib's region facts name it.
_FACT_VERSION = "1.0.103"
RULE_ID = "SecretsExtensionRegion"


@cache
def supported_regions(architecture: str) -> tuple[str, ...]:
    """The regions where aws-cdk-lib has the extension's layer for this architecture (arm64 or x86_64):
    read once per synth (each of ~46 regions is a call into the jsii runtime), not once per stack."""
    return tuple(
        sorted(
            r.name
            for r in region_info.RegionInfo.regions
            if r.params_and_secrets_lambda_layer_arn(_FACT_VERSION, architecture)
        )
    )


def fix(settings: Settings) -> str:
    return (
        f'set "secrets_extension": false for {settings.env_name} in cdk.json (the worker then reads the secret '
        "with the SDK)"
    )


def check_region(stack: Stack, settings: Settings) -> None:
    """One line, before any function is built, when the stack's region has no layer; for a region-agnostic
    stack, the template rule that refuses such a region at deploy time with the same advice."""
    if not settings.secrets_extension:
        return
    regions = supported_regions(settings.architecture)
    if not Token.is_unresolved(stack.region):
        if stack.region not in regions:
            raise SettingsError(
                f"invalid settings for environment {settings.env_name!r}: region {stack.region} has no "
                f"{settings.architecture} layer of the Parameters and Secrets extension; {fix(settings)}, or "
                f"deploy to one of {len(regions)} regions that have it"
            )
        return
    if stack.node.try_find_child(RULE_ID) is None:
        CfnRule(
            stack,
            RULE_ID,
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_contains(list(regions), Aws.REGION),
                    assert_description=(
                        f"This region has no {settings.architecture} layer of the Parameters and Secrets extension: "
                        f"{fix(settings)}, or deploy to one of: {', '.join(regions)}"
                    ),
                )
            ],
        )
