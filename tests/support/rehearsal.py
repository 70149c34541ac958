"""`make deploy-local` rehearsed end to end, for tests/infra/test_rehearsal.py: each environment's rehearsal
has its own state directory, moto server and CDK output directory."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cli import rehearsal

ROOT = Path(__file__).resolve().parents[2]


#: Two more pools for the rehearsal: test-echo (the demo's jobs) runs in `video`; `ledger` is FIFO.
POOLS = {"video": {"types": ["test-echo"], "timeout_seconds": 120}, "ledger": {"types": ["ledger.post"], "fifo": True}}
#: The Django example as cdk.json names it (examples/django_signup/README.md), and a task of it to run.
DJANGO = {
    "settings_module": "examples.django_signup.settings",
    "packages": ["examples"],
    "requirements": "examples/django_signup/requirements.txt",
}
DJANGO_TASK = {"task": "examples.django_signup.tasks.send_welcome_email", "args": ["ada@example.com"]}


def rehearse(env: str, settings: dict[str, object] | None = None) -> None:
    """`make deploy-local ENV=env` (with these settings), the jobs it works, the console it opens and the
    commands it prints run as a new user pastes them, then `make destroy-local`: nothing left behind."""
    assert (ROOT / "node_modules" / ".bin" / "cdk").exists(), "make deps installs the pinned CDK CLI"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    extra = ["--settings", json.dumps(settings)] if settings else []
    up = subprocess.run(
        [sys.executable, "-m", "cli.rehearsal", "up", "--env", env, *extra],
        cwd=ROOT, env=environ, capture_output=True, text=True,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        outputs = json.loads((rehearsal.state_dir(env) / "outputs.json").read_text())[f"JobsStack-{env}"]
        assert {"QueueUrl", "DeadLetterQueueUrl", "DatabaseSecretArn", "EventSourceMappingId"} <= set(outputs)
        assert f"✅  JobsStack-{env}" in up.stdout + up.stderr
        assert f"completed {rehearsal.DEMO_JOBS}, failed 0, in flight 0, waiting 0, dead-lettered 0" in up.stderr
        if settings:
            assert outputs["PoolLedgerQueueUrl"].endswith(f"JobsStack-{env}-ledger-jobs.fifo")
            assert json.loads(outputs["Routes"])["types"] == {"test-echo": "video", "ledger.post": "ledger"}
            assert "running the worker of pool video on" in up.stderr
        assert rehearsal.running_port(env) is not None, "the server stays up for `jobstack --endpoint-url`"
        console_url = re.search(
            rf"The jobstack console of JobsStack-{env} \(until make destroy-local\): (\S+)", up.stdout
        )
        assert console_url, up.stdout[-2000:]
        overview = _open_console(console_url.group(1))
        assert (
            f"JobsStack-{env}" in overview
            and f'<td class="num" data-total="completed">{rehearsal.DEMO_JOBS}<' in overview
        )
        for pool in ["default", *(POOLS if settings else [])]:
            assert f'<tr data-pool="{pool}">' in overview
        printed = _printed_commands(up.stdout, env)
        # moto runs no Lambda: it says the workers are paused and how to work a job published later, per pool
        assert "Its workers are paused (moto runs no Lambda)" in up.stdout
        pools = ["default", *(POOLS if settings else [])]
        assert sum(" local" in c and c.split("#")[0].rstrip().endswith("--until-empty") for c in printed) == len(pools)
        if settings and "django" in settings:  # the deployed settings' Django project runs a task of its own
            base = printed[1].split(" stats")[0]
            printed += [
                f"{base} publish django.task --payload {shlex.quote(json.dumps(DJANGO_TASK))}",
                f"{base} local --until-empty",
                f"{base} stats",
            ]
        shell = subprocess.run(  # as a new user pastes them: a plain shell, no AWS credentials of their own
            ["bash", "-c", "set -e\n" + "\n".join(printed)],
            cwd=ROOT, env=NEW_USER, capture_output=True, text=True,
        )  # fmt: skip
        assert shell.returncode == 0, shell.stdout[-2000:] + shell.stderr[-2000:]
        assert f"completed  test-echo  {rehearsal.DEMO_JOBS}" in shell.stdout, "stats of the deployed stack's jobs"
        if settings and "django" in settings:
            assert "completed  django.task  1" in shell.stdout, shell.stdout[-2000:] + shell.stderr[-2000:]
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "cli.rehearsal", "down", "--env", env],
            cwd=ROOT, env=environ, capture_output=True, text=True,
        )  # fmt: skip
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
    assert f"JobsStack-{env}: destroyed" in down.stdout + down.stderr
    assert rehearsal.running_port(env) is None
    assert not rehearsal.state_dir(env).exists(), "destroy-local leaves nothing behind"
    with pytest.raises(urllib.error.URLError, match="Connection refused"):  # the console stopped with it
        _open_console(console_url.group(1))


def _open_console(url: str) -> str:
    """The console's overview as a browser gets it: the token's URL, its cookie, then the page."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(url, timeout=10) as response:
        assert response.status == 200 and response.url.endswith("/")  # redirected, the token now a cookie
        return str(response.read().decode())


#: A new user's shell: a PATH and a home, nothing of ours or of AWS's.
NEW_USER = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}


def _printed_commands(stdout: str, env: str) -> list[str]:
    """The lines `up` tells the user to run, without `make destroy-local` (the test runs `down` itself)."""
    block = stdout.split("keeps running. In a shell:\n", 1)[1].splitlines()
    commands = [line.strip() for line in block if line.startswith("  ")]
    assert commands[0].startswith("source ") and f"jobstack --env {env}" in commands[1], commands
    return [c for c in commands if not c.startswith("make ")]
