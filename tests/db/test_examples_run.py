"""Each example runs as its README says: `jobstack local` in one process prints the line a second shell
needs, `python -m examples.flask_signup` (or the Django one, or the async FastAPI one) in another serves
signups on it, a good signup's job completes, and an address the schema refuses is a 400 with one line. Only
a new user's environment is passed on."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from cli.local_ports import free_port, wait_until_listening
from cli.scratch_database import admin_url, scratch_database
from db import normalise_url

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
NEW_USER = {"PATH": f"{ROOT / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")}


def _post(port: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/signup", json.dumps(body).encode(), {"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http://127.0.0.1, built here
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _exports(line: str) -> dict[str, str]:
    words = shlex.split(line.strip().removeprefix("export "))
    return dict(word.split("=", 1) for word in words)


@pytest.mark.parametrize("example", ["flask_signup", "django_signup", "fastapi_signup"])
def test_each_example_runs_as_its_readme_says(example: str, tmp_path: Path) -> None:
    if example != "django_signup":  # the Flask and FastAPI examples run on SQLite, as `jobstack local` embeds it
        _run_example(example, ["--sqlite", str(tmp_path / "example.sqlite3")])
        return
    with scratch_database(admin_url(), prefix="jobstack_example") as url:  # Django's needs PostgreSQL
        _run_example(example, ["--database-url", url])


#: What each example's README sets in the worker's shell: the Django project's settings, whose tasks it runs.
WORKER_SHELL = {"django_signup": {"DJANGO_SETTINGS_MODULE": "examples.django_signup.settings"}}


def _run_example(example: str, database: list[str]) -> None:
    worker = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "jobstack"), "local", *database, "--concurrency", "1"],
        cwd=ROOT, env=NEW_USER | WORKER_SHELL.get(example, {}), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    app = None
    try:
        assert worker.stderr is not None
        lines: list[str] = []
        while not any(line.startswith("  export ") for line in lines):
            line = worker.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
        shared = _exports(next(line for line in lines if line.startswith("  export ")))
        assert set(shared) >= {"DATABASE_URL", "QUEUE_URL", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID"}
        port = free_port()
        app = subprocess.Popen(
            [sys.executable, "-m", f"examples.{example}"],
            cwd=ROOT, env=NEW_USER | shared | {"PORT": str(port)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        assert wait_until_listening(port, seconds=30, alive=lambda: app is not None and app.poll() is None), (
            app.stdout.read() if app.stdout and app.poll() is not None else "not listening"
        )

        created, body = _post(port, {"email": "jo@example.com"})
        assert created == 201, body
        refused, error = _post(port, {"email": "not-an-email"})
        assert refused == 400
        assert re.fullmatch(r"invalid payload for job type 'welcome-email': email: [^\n]+", error["error"]), error

        engine = create_engine(normalise_url(shared["DATABASE_URL"]))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT id, status FROM background_jobs")).all()
                users = conn.execute(text("SELECT email FROM users")).scalars().all()
            if [r.status for r in rows] == ["completed"]:
                break
            time.sleep(0.3)
        engine.dispose()
        job_id = body["task"] if example == "django_signup" else body["job"]
        assert [(str(r.id).replace("-", ""), r.status) for r in rows] == [(job_id.replace("-", ""), "completed")]
        assert users == ["jo@example.com"], "the refused signup wrote nothing"
        if example == "django_signup":  # the worker's result, read back by the web app (get_result)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/tasks/{job_id}", timeout=10) as response:
                assert json.loads(response.read()) == {
                    "status": "SUCCESSFUL",
                    "attempts": 1,
                    "return_value": {"domain": "example.com", "attempt": 1},
                }
        app.terminate()
        said, _ = app.communicate(timeout=30)
        assert f"the signup view on http://127.0.0.1:{port}/signup" in said, said  # where to send, at start
    finally:
        for process in (app, worker):
            if process is not None and process.returncode is None:
                process.terminate()
                process.communicate(timeout=30)  # drains and closes its pipes
