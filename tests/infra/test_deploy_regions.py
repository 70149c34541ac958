"""Regional layers (the Parameters and Secrets extension, tracing "otel"'s ADOT layer) exist in some regions
only; every stack says so before AWS does, and `jobstack doctor --before-deploy` asks the same question.

aws-cdk-lib maps the layer per region (21 for arm64 today); CloudFormation rejects a template whose
`Fn::FindInMap` has no entry for the region it is deployed to, before it creates anything
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-findinmap.html).
- An environment bound to a listed region gets that region's layer ARN, and no map and no rule.
- One bound to a region without a layer fails synth in one line (no traceback) saying to set
  `secrets_extension: false`.
- A region-agnostic one carries the map and a template rule listing exactly the map's regions: CloudFormation
  evaluates rules before it creates or updates anything and refuses with the rule's description
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stacks.deploy_regions import RULE_ID, adot_regions, deployable_regions, region_problem, supported_regions
from stacks.settings import SettingsError
from tests.support.synth import (
    assert_checks_pass,
    cdk_context,
    of_type,
    settings_of,
    stack_template,
    synth_app,
    synth_errors,
)

pytestmark = pytest.mark.infra
ACCOUNT = "123456789012"


def _layers(template: dict[str, Any]) -> list[Any]:
    return [f["Properties"].get("Layers") for f in of_type(template, "AWS::Lambda::Function").values()]


def test_a_region_agnostic_stack_refuses_regions_without_the_layer_before_creating_anything(
    templates: dict[str, dict[str, Any]],
) -> None:
    dev = templates["dev"]
    [(map_name, by_region)] = dev["Mappings"].items()
    assert map_name.startswith("Paramsandsecretslayer")
    rule = dev["Rules"][RULE_ID]
    [assertion] = rule["Assertions"]  # dev has no tracing: the extension alone
    listed, region = assertion["Assert"]["Fn::Contains"]
    assert region == {"Ref": "AWS::Region"}
    assert sorted(listed) == sorted(by_region), "the rule admits exactly the regions the map has"
    assert "ap-northeast-3" not in listed and "il-central-1" not in listed
    assert '"secrets_extension": false for dev' in assertion["AssertDescription"]
    assert all(layers for layers in _layers(dev))


def test_a_stack_bound_to_a_listed_region_names_its_layer(tmp_path: Path) -> None:
    assembly = synth_app(tmp_path / "out", cdk_context(dev={"account": ACCOUNT, "region": "eu-west-1"}))
    assert_checks_pass(assembly, ("dev",), tmp_path)
    dev = stack_template(assembly, "dev")
    assert RULE_ID not in dev.get("Rules", {}) and "Mappings" not in dev
    for layers in _layers(dev):
        [arn] = layers
        assert arn.startswith("arn:aws:lambda:eu-west-1:") and "Parameters-and-Secrets-Lambda-Extension-Arm64" in arn


def test_without_the_extension_any_region_deploys(tmp_path: Path) -> None:
    context = cdk_context(dev={"account": ACCOUNT, "region": "ap-northeast-3", "secrets_extension": False})
    dev = stack_template(synth_app(tmp_path / "out", context), "dev")
    assert _layers(dev) == [None] * len(_layers(dev)) and RULE_ID not in dev.get("Rules", {})


def test_the_x86_map_is_its_own() -> None:
    """x86_64 has layers in regions arm64 lacks (ap-northeast-3 among them): the check follows the architecture."""
    assert "ap-northeast-3" in supported_regions("x86_64") and "ap-northeast-3" not in supported_regions("arm64")


def _admitted(rule: dict[str, Any]) -> set[str]:
    """The regions a CloudFormation rule lets through: every assertion must hold, so their lists' common part."""
    lists = [set(a["Assert"]["Fn::Contains"][0]) for a in rule["Assertions"]]
    assert all(a["Assert"]["Fn::Contains"][1] == {"Ref": "AWS::Region"} for a in rule["Assertions"])
    return set.intersection(*lists)


def test_otel_admits_only_the_regions_with_every_layer_before_creating_anything(tmp_path: Path) -> None:
    """The ADOT layer's ARN is a plain join on AWS::Region: without the rule, CloudFormation would create the
    queues and roles in af-south-1 (an extension region without ADOT) and roll back at CreateFunction."""
    context = cdk_context(
        dev={"tracing": "otel"},
        staging={"tracing": "otel", "secrets_extension": False},
        prod={"tracing": "xray", "secrets_extension": False},
    )
    assembly = synth_app(tmp_path / "out", context)
    assert_checks_pass(assembly, ("dev", "staging"), tmp_path)
    dev, staging, prod = (stack_template(assembly, env) for env in ("dev", "staging", "prod"))

    both = _admitted(dev["Rules"][RULE_ID])
    assert both == set(supported_regions("arm64")) & set(adot_regions("arm64"))
    assert both == set(deployable_regions_for(tracing="otel"))
    for region in ("af-south-1", "ap-east-1", "ap-southeast-3", "eu-south-1", "me-south-1"):
        assert region in supported_regions("arm64") and region not in both
    descriptions = [a["AssertDescription"] for a in dev["Rules"][RULE_ID]["Assertions"]]
    assert any('"tracing": "xray" for dev' in d and "ADOT Python layer" in d for d in descriptions)

    # Without the extension the ADOT layer still needs its rule: every region outside its 16 would fail.
    [adot_only] = staging["Rules"][RULE_ID]["Assertions"]
    assert set(adot_only["Assert"]["Fn::Contains"][0]) == set(adot_regions("arm64"))
    assert "Mappings" not in staging
    # xray is Lambda's own tracing, no layer: any region.
    assert RULE_ID not in prod.get("Rules", {})


@pytest.mark.parametrize(
    ("bound", "message"),
    [
        ({"region": "ap-northeast-3"},
         "region ap-northeast-3 has no arm64 layer of the Parameters and Secrets extension; set "
         '"secrets_extension": false for dev in cdk.json (the worker then reads the secret with the SDK), or deploy '
         "to one of {extension} regions that have it"),
        ({"region": "af-south-1", "tracing": "otel"},
         'region af-south-1 has no arm64 ADOT Python layer 1.29.0 (tracing "otel"); set "tracing": "xray" for dev '
         "in cdk.json (Lambda's own tracing, no layer), or deploy to one of {both} regions that have every layer in "
         "use"),
    ],
)  # fmt: skip
def test_a_stack_bound_to_a_region_without_a_layer_fails_synth_in_one_line(
    tmp_path: Path, bound: dict[str, str], message: str
) -> None:
    context = cdk_context(dev={"account": ACCOUNT, **bound})
    with pytest.raises(SettingsError) as caught:
        synth_app(tmp_path / "out", context)
    counts = {"extension": len(supported_regions("arm64")), "both": len(deployable_regions_for(tracing="otel"))}
    assert str(caught.value) == "invalid settings for environment 'dev': " + message.format(**counts)
    # The same through app.py, as `cdk synth` runs it: one line on stderr, no traceback.
    assert synth_errors(context, tmp_path / "app") == (1, [f"error: {caught.value}"])


def deployable_regions_for(**changes: Any) -> tuple[str, ...]:
    return deployable_regions(replace(settings_of("dev"), **changes)) or ()


def test_region_problem_names_each_missing_layer_and_each_fix() -> None:
    dev = settings_of("dev")
    assert region_problem(replace(dev, tracing="off"), "ap-southeast-3") is None  # the extension has it
    assert region_problem(replace(dev, tracing="otel"), "eu-west-1") is None
    outside_both = region_problem(replace(dev, tracing="otel"), "il-central-1")
    assert outside_both is not None and "\n" not in outside_both
    assert "Parameters and Secrets extension and no arm64 ADOT Python layer" in outside_both
    assert '"secrets_extension": false for dev' in outside_both and '"tracing": "xray" for dev' in outside_both
    assert region_problem(replace(dev, tracing="xray", secrets_extension=False), "il-central-1") is None
    assert deployable_regions(replace(dev, tracing="off", secrets_extension=False)) is None
