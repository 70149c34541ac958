"""Synthesizing the app in tests: cdk.json's context with some environments' settings changed (the committed
cdk.json stays the snapshot tests' subject), and every variant checked by the same rules (cdk-nag, cfn-lint).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from stacks.app_factory import build_app, synthesize
from stacks.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "staging", "prod")
#: Two pools beside the default: a long-running one and a FIFO one.
VIDEO_AND_LEDGER_POOLS: dict[str, dict[str, Any]] = {
    "video": {"types": ["video.transcode", "test-echo"], "timeout_seconds": 900, "memory_mb": 3008,
              "max_concurrency": 4, "alarm_oldest_message_seconds": 3600},
    "ledger": {"types": ["ledger.post"], "fifo": True, "timeout_seconds": 30},
}  # fmt: skip
#: The Python running the tests (major.minor): the bundle is also built for it, to run here.
HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


#: What the CDK CLI adds to an app's context, so test synths match `cdk synth` byte for byte.
CLI_CONTEXT = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
}


def cdk_context(*, alone: bool = False, **environments: dict[str, Any]) -> dict[str, Any]:
    """cdk.json's context, parsed afresh (callers may change it), with each named environment's settings
    overlaid, e.g. `cdk_context(dev={"queue_encryption": "kms"})`. `alone`: the named environments only, so
    a test of one environment's variant synthesizes one stack, not three (the others are cdk.json's own,
    which the snapshot and checks tests cover)."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    for env, overrides in environments.items():
        context["jobstack"]["environments"][env].update(overrides)
    if alone:
        named = context["jobstack"]["environments"]
        context["jobstack"]["environments"] = {env: named[env] for env in environments}
    return context | CLI_CONTEXT


#: cfn-lint warnings we accept, each with its reason.
@functools.cache
def settings_of(env: str) -> Settings:
    """An environment's settings as `cdk synth` reads them from this checkout's cdk.json."""
    return load_settings(cdk_context(), env)


IGNORED_CFN_LINT = {
    "W3005": "CDK adds DependsOn from each function to its role's policy so the policy exists before the first "
    "invocation; the GetAtt on the role alone would not order the separate AWS::IAM::Policy.",
}


def synth_app(outdir: Path, context: dict[str, Any]) -> cdk.cx_api.CloudAssembly:
    """The whole app, cdk-nag included, as `cdk synth` builds it from this context."""
    return synthesize(build_app(cdk.App(outdir=str(outdir), context=context)))


def synth_errors(context: dict[str, Any], outdir: Path) -> tuple[int, list[str]]:
    """`app.py` run as `cdk synth` runs it: its exit code and what it printed on stderr, without CDK's
    progress lines and Node's end-of-life banner (what a user would read as the error)."""
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(outdir)},
        capture_output=True,
        text=True,
        check=False,
    )
    noise = ("!!", "b'!!", "Bundling asset ")
    return result.returncode, [
        line for line in result.stderr.splitlines() if line.strip() and not line.startswith(noise)
    ]


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


def cfn_lint(template: dict[str, Any], path: Path) -> list[Any]:
    """cfn-lint's findings on `template` (written to `path`), minus the warnings ignored above."""
    path.write_text(json.dumps(template))
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "json", "--ignore-checks", *IGNORED_CFN_LINT, "--", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings: list[Any] = json.loads(result.stdout or "[]")
    return findings
