"""Synthesize the real app once per test session (bundles come from the content-addressed cache)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.app_factory import build_app
from tests.support.synth import ENVIRONMENTS, cdk_context


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
