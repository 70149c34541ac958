"""The Parameters and Secrets extension's layer exists in some regions only; every stack says so before AWS does.

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

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stacks.extension_regions import RULE_ID, supported_regions
from stacks.settings import SettingsError
from tests.support.synth import ROOT, assert_checks_pass, cdk_context, of_type, stack_template, synth_app

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
    [assertion] = rule["Assertions"]
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


def test_a_stack_bound_to_a_region_without_the_layer_fails_synth_in_one_line(tmp_path: Path) -> None:
    context = cdk_context(dev={"account": ACCOUNT, "region": "ap-northeast-3"})
    with pytest.raises(SettingsError) as caught:
        synth_app(tmp_path / "out", context)
    assert str(caught.value) == (
        "invalid settings for environment 'dev': region ap-northeast-3 has no arm64 layer of the Parameters and "
        'Secrets extension; set "secrets_extension": false for dev in cdk.json (the worker then reads the secret '
        f"with the SDK), or deploy to one of {len(supported_regions('arm64'))} regions that have it"
    )
    # The same through app.py, as `cdk synth` runs it: one line on stderr, no traceback.
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path / "app")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith(("!!", "b'!!"))]
    assert errors == [f"error: {caught.value}"], result.stderr


def test_without_the_extension_any_region_deploys(tmp_path: Path) -> None:
    context = cdk_context(dev={"account": ACCOUNT, "region": "ap-northeast-3", "secrets_extension": False})
    dev = stack_template(synth_app(tmp_path / "out", context), "dev")
    assert _layers(dev) == [None] * len(_layers(dev)) and RULE_ID not in dev.get("Rules", {})


def test_the_x86_map_is_its_own() -> None:
    """x86_64 has layers in regions arm64 lacks (ap-northeast-3 among them): the check follows the architecture."""
    assert "ap-northeast-3" in supported_regions("x86_64") and "ap-northeast-3" not in supported_regions("arm64")
