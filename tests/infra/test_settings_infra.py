"""A synth with bad settings prints one line and fails (the real `cdk synth` path)."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.synth import ROOT

pytestmark = pytest.mark.infra


def test_synth_with_bad_settings_prints_one_line_and_fails(tmp_path) -> None:
    bad = '{"jobstack": {"environments": {"dev": {"batch_size": 50}}}}'
    result = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "app.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"CDK_CONTEXT_JSON": bad, "CDK_OUTDIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: invalid settings for environment 'dev': batch_size is 50: a batch over 10 needs "
        "max_batching_window_seconds of at least 1"
    )
