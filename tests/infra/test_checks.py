"""cdk-nag and cfn-lint on every synthesized template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

import stacks.nag
from stacks.app_factory import build_app
from tests.support.synth import ENVIRONMENTS, cdk_context, cfn_lint

pytestmark = pytest.mark.infra


def test_cdk_nag_passes_with_only_reasoned_acknowledgements(cloud_assembly: cdk.cx_api.CloudAssembly) -> None:
    # The session's synth ran the AwsSolutions pack (a failure would have raised); check its report.
    report = json.loads((Path(cloud_assembly.directory) / "validation-report.json").read_text())
    violations = [v for r in report["pluginReports"] for v in r.get("violations", [])]
    assert [v for v in violations if v["severity"] == "error"] == []


def test_an_unacknowledged_finding_fails_synth(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(stacks.nag, "acknowledge", lambda *_args: None)
    app = build_app(cdk.App(outdir=str(tmp_path), context=cdk_context()))
    with pytest.raises(RuntimeError, match="ValidationFailed") as caught:
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for r in report["pluginReports"] for v in r["violations"]}
    assert rules == {"AwsSolutions-SMG4", "AwsSolutions-L1"}, caught.value  # L1: Python 3.13, see worker_code


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cfn_lint_finds_no_errors(templates: dict[str, dict[str, Any]], env: str, tmp_path: Path) -> None:
    assert cfn_lint(templates[env], tmp_path / f"JobsStack-{env}.template.json") == []
