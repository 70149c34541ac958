"""Synthesize the real app once per test session (bundles come from the content-addressed cache)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.app_factory import build_app, synthesize
from tests.support.synth import ENVIRONMENTS, cdk_context, stack_template, synth_app


@pytest.fixture(scope="session")
def cloud_assembly(tmp_path_factory: pytest.TempPathFactory) -> cdk.cx_api.CloudAssembly:
    outdir = tmp_path_factory.mktemp("cdk.out")
    return synthesize(build_app(cdk.App(outdir=str(outdir), context=cdk_context())))


@pytest.fixture(scope="session")
def templates(cloud_assembly: cdk.cx_api.CloudAssembly) -> dict[str, dict[str, Any]]:
    return {env: cloud_assembly.get_stack_by_name(f"JobsStack-{env}").template for env in ENVIRONMENTS}


@pytest.fixture(scope="session", params=ENVIRONMENTS)
def env_template(request: pytest.FixtureRequest, templates: dict[str, dict[str, Any]]) -> tuple[str, Template]:
    env: str = request.param
    return env, Template.from_json(templates[env])


#: Pools (one FIFO) and a schedule: every kind of function the stack can deploy.
POOLS = {"video": {"types": ["video.transcode"]}, "ledger": {"types": ["ledger.post"], "fifo": True}}
SCHEDULES = {"nightly": {"cron": "0 3 * * ? *", "type": "test-echo"}}


@pytest.fixture(scope="session")
def pooled_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """JobsStack-dev with POOLS and SCHEDULES: its sweeper, schedules' function and three worker pools."""
    context = cdk_context(dev={"pools": POOLS, "schedules": SCHEDULES})
    return stack_template(synth_app(tmp_path_factory.mktemp("contract"), context), "dev")
