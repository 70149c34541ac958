"""Where the stack can be deployed, decided at synth from every regional layer the settings attach.

Lambda layers are regional resources ("they can only be used in the Region in which they are published",
ADOT's docs), and aws-cdk-lib knows each layer's ARN per region from its region facts. Two settings attach
one: `secrets_extension` (AWS's Parameters and Secrets extension, a `Fn::FindInMap` over its regions in a
region-agnostic template) and `tracing: "otel"` (the ADOT Python layer, a plain `arn:aws:lambda:${AWS::Region}:…`
join that CloudFormation accepts anywhere and Lambda refuses at CreateFunction, after the queues, roles and
alarms exist). So the decision is made once, here, from every layer in use:
- a region-bound stack in a region some layer lacks fails synth in one line naming the layer and its fix;
- a region-agnostic stack carries one `DeployRegion` rule with an assertion per layer, so CloudFormation
  admits only the intersection of their regions and refuses the others before it creates anything
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html);
- `jobstack doctor --before-deploy` asks `region_problem` the same question for the region it would deploy to.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from aws_cdk import Aws, CfnRule, CfnRuleAssertion, Fn, Stack, Token, region_info
from aws_cdk import aws_lambda as lambda_

from stacks.settings import Settings, SettingsError

VERSION = lambda_.ParamsAndSecretsVersions.V1_0_103
#: The extension's version as aws-cdk-lib's region facts name it.
_FACT_VERSION = "1.0.103"
#: The ADOT Python layer (OpenTelemetry Python with a collector as a Lambda extension), pinned: a newer
#: aws-cdk-lib must not move every function to another layer in a `cdk diff` nobody asked for.
ADOT_LAYER = lambda_.AdotLambdaLayerPythonSdkVersion.V1_29_0
_ADOT_FACT_VERSION = "1.29.0"
RULE_ID = "DeployRegion"


@dataclass(frozen=True)
class RegionalLayer:
    """A layer the settings attach to every function, the regions that publish it, and how to do without."""

    what: str  # "the Parameters and Secrets extension"
    setting: str  # the cdk.json change that removes it
    regions: tuple[str, ...]


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


@cache
def adot_regions(architecture: str) -> tuple[str, ...]:
    """The regions where aws-cdk-lib has the pinned ADOT Python layer for this architecture (all in the
    `aws` partition, which the layer's ARN writes out)."""
    return tuple(
        sorted(
            r.name
            for r in region_info.RegionInfo.regions
            if r.adot_lambda_layer_arn("PYTHON_SDK", _ADOT_FACT_VERSION, architecture)
        )
    )


def regional_layers(settings: Settings) -> list[RegionalLayer]:
    """Every layer these settings attach, each with the regions that have it."""
    layers = []
    if settings.secrets_extension:
        layers.append(
            RegionalLayer(
                f"{settings.architecture} layer of the Parameters and Secrets extension",
                f'"secrets_extension": false for {settings.env_name} in cdk.json (the worker then reads the secret '
                "with the SDK)",
                supported_regions(settings.architecture),
            )
        )
    if settings.tracing == "otel":
        layers.append(
            RegionalLayer(
                f'{settings.architecture} ADOT Python layer {_ADOT_FACT_VERSION} (tracing "otel")',
                f'"tracing": "xray" for {settings.env_name} in cdk.json (Lambda\'s own tracing, no layer)',
                adot_regions(settings.architecture),
            )
        )
    return layers


def deployable_regions(settings: Settings) -> tuple[str, ...] | None:
    """The regions these settings can be deployed to: every layer's regions in common; None, any region."""
    layers = regional_layers(settings)
    if not layers:
        return None
    common = set(layers[0].regions).intersection(*(layer.regions for layer in layers[1:]))
    return tuple(sorted(common))


def region_problem(settings: Settings, region: str) -> str | None:
    """One line saying why `region` cannot run these settings' functions, and what to do; None if it can."""
    missing = [layer for layer in regional_layers(settings) if region not in layer.regions]
    if not missing:
        return None
    regions = deployable_regions(settings) or ()
    return (
        f"region {region} has no "
        + " and no ".join(layer.what for layer in missing)
        + "; set "
        + " and ".join(layer.setting for layer in missing)
        + f", or deploy to one of {len(regions)} regions that have "
        + ("it" if len(regional_layers(settings)) == 1 else "every layer in use")
    )


def check_region(stack: Stack, settings: Settings) -> None:
    """One line, before any function is built, when the stack's region lacks a layer; for a region-agnostic
    stack, the template rule that refuses such a region at deploy time with the same advice."""
    layers = regional_layers(settings)
    if not layers:
        return
    if not Token.is_unresolved(stack.region):
        problem = region_problem(settings, stack.region)
        if problem:
            raise SettingsError(f"invalid settings for environment {settings.env_name!r}: {problem}")
        return
    if stack.node.try_find_child(RULE_ID) is None:
        CfnRule(
            stack,
            RULE_ID,
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_contains(list(layer.regions), Aws.REGION),
                    assert_description=(
                        f"This region has no {layer.what}: set {layer.setting}, or deploy to one of: "
                        f"{', '.join(deployable_regions(settings) or ())}"
                    ),
                )
                for layer in layers
            ],
        )
