"""`make deploy-local` / `make destroy-local`: the pinned CDK CLI's real bootstrap, deploy and destroy of
JobsStack-dev against a moto server, and jobs published and completed on the deployed queues."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli import rehearsal

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_deploy_local_deploys_with_the_real_cli_works_jobs_and_destroy_local_removes_it() -> None:
    assert (ROOT / "node_modules" / ".bin" / "cdk").exists(), "make deps installs the pinned CDK CLI"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    up = subprocess.run(
        [sys.executable, "-m", "cli.rehearsal", "up", "--env", "dev"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        outputs = json.loads((rehearsal.state_dir("dev") / "outputs.json").read_text())["JobsStack-dev"]
        assert {"QueueUrl", "DeadLetterQueueUrl", "DatabaseSecretArn", "EventSourceMappingId"} <= set(outputs)
        assert "✅  JobsStack-dev" in up.stdout + up.stderr
        assert f"completed {rehearsal.DEMO_JOBS}, failed 0, in flight 0, waiting 0, dead-lettered 0" in up.stderr
        assert rehearsal.running_port("dev") is not None, "the server stays up for `jobs --endpoint-url`"
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "cli.rehearsal", "down", "--env", "dev"],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
    assert "JobsStack-dev: destroyed" in down.stdout + down.stderr
    assert rehearsal.running_port("dev") is None
