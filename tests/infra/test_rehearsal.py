"""`make deploy-local` / `make destroy-local`: the pinned CDK CLI's real bootstrap, deploy and destroy of
JobsStack-dev against a moto server, and jobs published and completed on the deployed queues: the default
settings (one pool), and three pools, one FIFO, with the Django example project, on staging (a task of it run by
the deployed settings). One after the other, in one test process: each
is CPU-bound (the CDK CLI), and side by side on two cores they took longer than in a row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli import rehearsal
from tests.support.rehearsal import DJANGO, NEW_USER, POOLS, rehearse

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_deploy_local_of_an_environment_not_in_cdk_json_fails_in_one_line_before_starting_anything() -> None:
    up = subprocess.run(
        [sys.executable, "-m", "cli.rehearsal", "up", "--env", "qa"],
        cwd=ROOT, env=NEW_USER | {"PATH": os.environ["PATH"]}, capture_output=True, text=True,
    )  # fmt: skip
    assert up.returncode == 1
    assert up.stderr.strip().splitlines() == [
        "error: invalid settings for environment 'qa': not in cdk.json context jobstack.environments (dev, staging, "
        "prod)"
    ]
    assert rehearsal.running_port("qa") is None and not rehearsal.state_dir("qa").exists()


@pytest.mark.parametrize(
    ("env", "settings"),
    [("dev", None), ("staging", {"pools": POOLS, "django": DJANGO})],
    ids=["one pool", "three pools, one FIFO, a Django project"],
)
def test_deploy_local_deploys_with_the_real_cli_works_jobs_and_destroy_local_removes_it(
    env: str, settings: dict[str, object] | None
) -> None:
    rehearse(env, settings)


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        (
            "{bad",
            "error: SETTINGS is not JSON (Expecting property name enclosed in double quotes): give an object like ",
        ),
        ("[1]", "error: SETTINGS must be a JSON object like '{\"pools\": {...}}', got '[1]'"),
    ],
)
def test_deploy_local_with_settings_that_are_not_a_json_object_fails_in_one_line(settings: str, says: str) -> None:
    up = subprocess.run(
        [sys.executable, "-m", "cli.rehearsal", "up", "--env", "staging", "--settings", settings],
        cwd=ROOT, env=NEW_USER | {"PATH": os.environ["PATH"]}, capture_output=True, text=True,
    )  # fmt: skip
    assert up.returncode == 2
    [line] = up.stderr.strip().splitlines()
    assert line.startswith(says), line
    assert rehearsal.running_port("staging") is None and not rehearsal.state_dir("staging").exists()


def test_destroy_local_without_a_rehearsal_says_there_was_none() -> None:
    """Reported: `make destroy-local ENV=nosuch` said the rehearsal "is gone" when none existed."""
    assert not rehearsal.state_dir("prod").exists()
    down = subprocess.run(
        [sys.executable, "-m", "cli.rehearsal", "down", "--env", "prod"],
        cwd=ROOT, env=NEW_USER | {"PATH": os.environ["PATH"]}, capture_output=True, text=True,
    )  # fmt: skip
    assert down.returncode == 0
    assert down.stdout.strip() == (
        "JobsStack-prod has no rehearsal on this machine: nothing to destroy (make deploy-local ENV=prod)"
    )
