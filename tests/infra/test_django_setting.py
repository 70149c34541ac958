"""The setting `django` in the synthesized stack: every function is told the project's settings module (the
worker sets Django up with it at its first Django task), the code asset is the one with the project (its own
hash, so `cdk diff` shows a project change as a code change), and the template passes cdk-nag and cfn-lint;
without the setting nothing changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from tests.infra.test_settings import DJANGO
from tests.support.synth import assert_checks_pass, cdk_context, of_type, stack_template, synth_app
from worker.contract import Env

pytestmark = [pytest.mark.infra, pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")]


@pytest.fixture(scope="module")
def django(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk.cx_api.CloudAssembly, dict[str, Any]]:
    assembly = synth_app(tmp_path_factory.mktemp("django"), cdk_context(alone=True, dev={"django": DJANGO}))
    return assembly, stack_template(assembly, "dev")


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: f["Properties"] for k, f in of_type(template, "AWS::Lambda::Function").items()}


def _code_keys(template: dict[str, Any]) -> set[str]:
    return {f["Code"]["S3Key"] for f in _functions(template).values() if "S3Key" in f.get("Code", {})}


def test_every_function_is_told_the_settings_module_and_runs_the_projects_asset(
    django: tuple[cdk.cx_api.CloudAssembly, dict[str, Any]], templates: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    assembly, template = django
    assert_checks_pass(assembly, ("dev",), tmp_path)
    for function in _functions(template).values():
        assert function["Environment"]["Variables"][Env.DJANGO_SETTINGS_MODULE] == DJANGO["settings_module"]
    for function in _functions(templates["dev"]).values():
        assert Env.DJANGO_SETTINGS_MODULE not in function["Environment"]["Variables"]
    [with_project], [without] = _code_keys(template), _code_keys(templates["dev"])
    assert with_project != without, "the project is part of the code asset's hash"
