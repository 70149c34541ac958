"""`make diff` shows code changes: the snapshot's masked asset is filled with the hash recorded when the
snapshot was taken, so a changed bundle is each function's S3Key changing, and one line per function."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.infra import diff_base
from tests.infra.normalise import ASSET_PLACEHOLDER

pytestmark = pytest.mark.unit
OLD, NEW = "a" * 64, "b" * 64


def _template(asset: str) -> dict[str, Any]:
    def function(name: str) -> dict[str, Any]:
        return {
            "Type": "AWS::Lambda::Function",
            "Properties": {"Code": {"S3Bucket": "b", "S3Key": f"{asset}.zip"}},
            "Metadata": {"aws:cdk:path": f"JobsStack-dev/Jobs/{name}/Resource"},
        }

    return {
        "Resources": {"Worker1": function("Worker"), "Sweeper1": function("Sweeper"), "Q": {"Type": "AWS::SQS::Queue"}}
    }


def test_a_changed_code_asset_is_one_line_per_function() -> None:
    assert diff_base.code_changes(OLD, _template(OLD)) == []
    why = "(worker/, db/ or the pinned requirements)"
    assert diff_base.code_changes(OLD, _template(NEW)) == [
        f"code changed: JobsStack-dev/Jobs/{name} asset {OLD[:12]}… → {NEW[:12]}… {why}"
        for name in ("Sweeper", "Worker")
    ]
    assert "none recorded" in diff_base.code_changes(None, _template(NEW))[0]


def test_the_base_template_carries_the_recorded_asset_so_cdk_diff_shows_the_s3key_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshots = tmp_path / "__snapshots__" / "test_snapshot"
    snapshots.mkdir(parents=True)
    masked = json.dumps(_template(ASSET_PLACEHOLDER))
    (snapshots / "test_template_matches_the_snapshot[dev].json").write_text(masked)
    (tmp_path / "cdk.out").mkdir()
    (tmp_path / "cdk.out" / "JobsStack-dev.template.json").write_text(json.dumps(_template(NEW)))
    monkeypatch.setattr(diff_base, "ROOT", tmp_path)
    monkeypatch.setattr(diff_base, "SNAPSHOTS", snapshots)
    monkeypatch.setattr(diff_base, "CODE_ASSETS", tmp_path / "__snapshots__" / "code_assets.json")

    (tmp_path / "__snapshots__" / "code_assets.json").write_text(json.dumps({"dev": OLD}))
    assert diff_base.main(["dev", str(tmp_path / "base.json")]) == 0
    assert capsys.readouterr().out.count("code changed:") == 2
    assert f"{OLD}.zip" in (tmp_path / "base.json").read_text()

    assert diff_base.main(["record"]) == 2  # staging and prod were never synthesized here
    for env in ("staging", "prod"):
        (tmp_path / "cdk.out" / f"JobsStack-{env}.template.json").write_text(json.dumps(_template(NEW)))
    assert diff_base.main(["record"]) == 0
    assert diff_base.main(["dev", str(tmp_path / "base.json")]) == 0
    assert "code changed" not in capsys.readouterr().out
    assert f"{NEW}.zip" in (tmp_path / "base.json").read_text()
