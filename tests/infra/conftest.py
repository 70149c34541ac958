"""Synthesize the real app once per test session (bundles come from the content-addressed cache)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.app_factory import build_app

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "staging", "prod")


#: What the CDK CLI adds to an app's context, so test synths match `cdk synth` byte for byte.
CLI_CONTEXT = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
}


def cdk_context(**environments: dict[str, Any]) -> dict[str, Any]:
    """cdk.json's context, parsed afresh (callers may change it), with each named environment's settings
    overlaid, e.g. `cdk_context(dev={"queue_encryption": "kms"})`."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    for env, overrides in environments.items():
        context["jobstack"]["environments"][env].update(overrides)
    return context | CLI_CONTEXT


@pytest.fixture(scope="session")
def cloud_assembly(tmp_path_factory: pytest.TempPathFactory) -> cdk.cx_api.CloudAssembly:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_app(cdk.App(outdir=str(outdir), context=cdk_context()))
    return app.synth()


@pytest.fixture(scope="session")
def templates(cloud_assembly: cdk.cx_api.CloudAssembly) -> dict[str, dict[str, Any]]:
    return {env: cloud_assembly.get_stack_by_name(f"JobsStack-{env}").template for env in ENVIRONMENTS}


@pytest.fixture(scope="session", params=ENVIRONMENTS)
def env_template(request: pytest.FixtureRequest, templates: dict[str, dict[str, Any]]) -> tuple[str, Template]:
    env: str = request.param
    return env, Template.from_json(templates[env])
