"""The Lambda asset alone (its own directory, its own interpreter) runs a test-echo job against real
PostgreSQL and moto."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from db import DB, JobStatus, Queue, get_job, publish
from stacks.bundling import BundleSpec, build_bundle, bundle_size
from stacks.settings_model import DjangoProject
from tests.support.esm import receive_event
from tests.support.synth import HOST_PYTHON

pytestmark = pytest.mark.integration


HOST_ARCH = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


def test_the_bundle_alone_runs_a_test_echo_job(
    tmp_path: Path, pg_url: str, pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    """Built for this host's Python, imported with nothing but the asset and the stdlib on sys.path."""
    asset = build_bundle(BundleSpec(HOST_PYTHON, HOST_ARCH), tmp_path / "asset")
    job = publish(pg_db, "test-echo", {"hello": "bundle"}, queue=queue)
    event = receive_event(queue)
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(asset)!r})\n"
        "import worker.handler\n"
        "assert 'boto3' not in sys.modules\n"
        "assert worker.handler.__file__.startswith(sys.path[0]), worker.handler.__file__\n"
        "import sqlalchemy\n"
        "assert sqlalchemy.__file__.endswith('__init__.pyc'), sqlalchemy.__file__  # sourceless\n"
        "class Ctx:\n"
        "    def get_remaining_time_in_millis(self): return 60000\n"
        "print(json.dumps(worker.handler.handler(json.loads(sys.stdin.read()), Ctx())))\n"
    )
    result = _run_alone(script, event, _worker_env(pg_url, queue, dlq))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"batchItemFailures": []}
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED


#: The Django example as cdk.json's `django` entry names it (examples/django_signup/README.md).
EXAMPLE_PROJECT = DjangoProject(
    settings_module="examples.django_signup.settings",
    packages=("examples",),
    requirements="examples/django_signup/requirements.txt",
)


def test_the_bundle_with_a_django_project_runs_its_task_alone(
    tmp_path: Path, pg_url: str, pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    """The project's packages and Django in the asset, `jobstack` its alias of `db` (the settings name
    jobstack.django's backend), and the task run by the asset's handler with nothing else on sys.path."""
    asset = build_bundle(BundleSpec(HOST_PYTHON, HOST_ARCH, django=EXAMPLE_PROJECT), tmp_path / "asset")
    assert {"django", "asgiref", "examples", "jobstack", "worker", "db"} <= {p.name for p in asset.iterdir()}
    assert [p.stem for p in (asset / "jobstack").iterdir()] == ["__init__"], "an alias, not a copy"
    unzipped, _zipped = bundle_size(asset)
    assert unzipped < 250 * 1024 * 1024, f"Lambda's limit for a function's unzipped code: {unzipped} bytes"
    call = {"task": "examples.django_signup.tasks.send_welcome_email", "args": ["kim@example.com"]}
    job = publish(pg_db, "django.task", call, queue=queue)
    event = receive_event(queue)
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(asset)!r})\n"
        "import worker.handler\n"
        "class Ctx:\n"
        "    aws_request_id = 'req-django'\n"
        "    def get_remaining_time_in_millis(self): return 60000\n"
        "print(json.dumps(worker.handler.handler(json.loads(sys.stdin.read()), Ctx())))\n"
        "import django, jobstack.django, db.django\n"
        "assert django.__file__.startswith(sys.path[0]), django.__file__\n"
        "assert jobstack.django is db.django, 'one module, one registry'\n"
    )
    env = _worker_env(pg_url, queue, dlq) | {"DJANGO_SETTINGS_MODULE": EXAMPLE_PROJECT.settings_module}
    result = _run_alone(script, event, env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"batchItemFailures": []}
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.COMPLETED, row
    assert row.result == {"domain": "example.com", "attempt": 1}


def _worker_env(pg_url: str, queue: Queue, dlq: Queue) -> dict[str, str]:
    return {"DATABASE_URL": pg_url, "QUEUE_URL": queue.url, "DLQ_URL": dlq.url, "LOG_LEVEL": "WARNING",
            "PATH": "/usr/bin:/bin"}  # fmt: skip


def _run_alone(script: str, event: dict[str, object], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The script in this host's Python with nothing but the asset (which it puts on sys.path) and the stdlib:
    -S, no site-packages; -I, no PYTHONPATH and no user site."""
    return subprocess.run(
        [sys.executable, "-S", "-I", "-c", script],
        input=json.dumps(event), capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
