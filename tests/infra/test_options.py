"""The optional settings' other side: SnapStart on, the secrets extension off. The checks every default
template passes (cdk-nag, cfn-lint) pass for these templates too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.synth import assert_checks_pass, cdk_context, of_type, stack_template, synth_app

pytestmark = pytest.mark.infra


def test_snapstart_on_and_the_extension_off_pass_cdk_nag_and_cfn_lint(tmp_path: Path) -> None:
    assembly = synth_app(tmp_path / "out", cdk_context(alone=True, dev={"snapstart": True, "secrets_extension": False}))
    assert_checks_pass(assembly, ("dev",), tmp_path)
    dev = stack_template(assembly, "dev")
    assert len(of_type(dev, "AWS::Lambda::Alias")) == 1
    assert all("Layers" not in f["Properties"] for f in of_type(dev, "AWS::Lambda::Function").values())
