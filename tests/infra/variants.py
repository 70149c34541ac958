"""Helpers for tests that synthesize the app with some environments' settings changed (VPC, KMS): the
committed cdk.json stays the snapshot tests' subject, and each variant is checked by the same rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from stacks.app_factory import build_app
from tests.infra.test_checks import cfn_lint


def synth_app(outdir: Path, context: dict[str, Any]) -> cdk.cx_api.CloudAssembly:
    """The whole app, cdk-nag included, as `cdk synth` builds it from this context."""
    return build_app(cdk.App(outdir=str(outdir), context=context)).synth()


def stack_template(assembly: cdk.cx_api.CloudAssembly, env: str) -> dict[str, Any]:
    found: dict[str, Any] = assembly.get_stack_by_name(f"JobsStack-{env}").template
    return found


def of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def assert_checks_pass(assembly: cdk.cx_api.CloudAssembly, envs: tuple[str, ...], tmp_path: Path) -> None:
    """cdk-nag found nothing unacknowledged in the whole app, and cfn-lint nothing in these stacks."""
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    assert [v for r in report["pluginReports"] for v in r.get("violations", [])] == []
    for env in envs:
        assert cfn_lint(stack_template(assembly, env), tmp_path / f"{env}.json") == []
