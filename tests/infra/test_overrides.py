"""`-c jobstack-overrides=JSON`: one deploy's settings without editing cdk.json, validated like cdk.json's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacks.overrides import with_overrides
from stacks.settings import SettingsError, load_settings

pytestmark = pytest.mark.unit
CDK_JSON = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]["jobstack"]
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:jobstack-rehearsal-dev-AbCdEf"


def test_an_override_changes_that_environment_only() -> None:
    merged = with_overrides(CDK_JSON, json.dumps({"dev": {"database_secret_arn": SECRET}}))
    assert load_settings({"jobstack": merged}, "dev").database_secret_arn == SECRET
    assert load_settings({"jobstack": merged}, "prod") == load_settings({"jobstack": CDK_JSON}, "prod")
    assert CDK_JSON["environments"]["dev"].get("database_secret_arn") is None, "cdk.json's object is not changed"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("{dev", "-c jobstack-overrides is not JSON"),
        ('["dev"]', "must map environment names to objects of settings"),
        ('{"qa": {"memory_mb": 1024}}', "names environment 'qa', which cdk.json does not define"),
    ],
)
def test_a_bad_override_is_one_line(overrides: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        with_overrides(CDK_JSON, overrides)


def test_an_overridden_value_is_validated_like_any_setting() -> None:
    merged = with_overrides(CDK_JSON, {"dev": {"database_secret_arn": "my-secret"}})
    with pytest.raises(SettingsError, match="database_secret_arn must be a full Secrets Manager secret ARN"):
        load_settings({"jobstack": merged}, "dev")
