"""The package a web app installs: the wheel holds `jobstack` and nothing else at the top level, declares
what it needs per role (extras), and publishes from a fresh virtualenv outside this repository: migrate,
enqueue in a transaction, publish, against PostgreSQL and a moto server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

import db
from cli.local.embedded import start_sqs

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

PUBLISHER = """
import json, sys
import boto3
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from jobstack import Queue, create_db, enqueue, publish
from jobstack.migrate import upgrade

url, endpoint, queue_url = sys.argv[1:4]
jobs_db = create_db(url)
upgrade(jobs_db)
queue = Queue(boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1"), queue_url)
published = publish(jobs_db, "test-echo", {"from": "a web app"}, queue=queue)
engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
with Session(engine) as session:
    session.execute(text("CREATE TABLE IF NOT EXISTS signups (email text)"))
    session.execute(text("INSERT INTO signups VALUES ('ivy@example.com')"))
    enqueued = enqueue(session, "test-echo", {"welcome": "ivy"}, queue=queue)
    session.commit()
names = sorted(m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("db", "worker", "cli", "stacks"))
print(json.dumps({"published": str(published.id), "enqueued": str(enqueued.id), "generic_names": names}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--quiet", "-w", str(out)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (built,) = out.glob("jobstack_sqs-*.whl")
    return built


def test_the_wheel_holds_jobstack_only_and_declares_its_dependencies_by_role(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert {n.split("/")[0] for n in names} == {"jobstack", wheel.name.split("-")[0] + "-0.1.0.dist-info"}
    assert "jobstack/migrations/versions/0001_create_background_jobs.py" in names
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any("sqlalchemy" in r and "extra" not in r for r in requires)
    assert any("psycopg[binary]" in r and 'extra == "postgres"' in r for r in requires)
    assert any("boto3" in r and 'extra == "sqs"' in r for r in requires)
    assert any("jobstack-sqs[postgres,sqs]" in r and 'extra == "web"' in r for r in requires)


@pytest.fixture
def sqs_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {"AWS_ACCESS_KEY_ID": "app", "AWS_SECRET_ACCESS_KEY": "app"}.items():
        monkeypatch.setenv(name, value)
    server = start_sqs()
    yield server.endpoint_url
    server.stop()


def test_a_fresh_virtualenv_publishes_and_enqueues_from_outside_the_repository(
    wheel: Path, tmp_path: Path, sqs_server: str
) -> None:
    venv = tmp_path / "venv"
    # Installed by this interpreter's pip into the new environment (`pip --python`), without compiling every
    # installed file: the environment is as fresh, and the test a third faster (no ensurepip, no botocore
    # bytecode the test never imports).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-compile",
         "--disable-pip-version-check", f"{wheel}[web,migrate]"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    sqs = boto3.client("sqs", endpoint_url=sqs_server, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="web-app-jobs")["QueueUrl"]
    from cli.scratch_database import admin_url, scratch_database

    with scratch_database(admin_url(), prefix="jobstack_package") as url:
        plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        run = subprocess.run(
            [str(python), "-c", PUBLISHER, plain, sqs_server, queue_url],
            cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads(run.stdout.strip().splitlines()[-1])
        assert result["generic_names"] == [], "no db, worker, cli or stacks in a web app's environment"
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
        assert sorted(json.loads(m["Body"])["jobId"] for m in messages) == sorted(
            [result["published"], result["enqueued"]]
        )
        jobs_db = db.create_db(url)
        try:
            rows = {str(j.id): j for j in db.list_jobs(jobs_db)}
        finally:
            jobs_db.dispose()
        assert set(rows) == {result["published"], result["enqueued"]}
        assert all(j.sent_at is not None for j in rows.values())
    no_db = subprocess.run([str(python), "-c", "import db"], cwd=tmp_path, capture_output=True, text=True)
    assert no_db.returncode == 1 and "No module named 'db'" in no_db.stderr


def test_both_names_import_inside_the_repository() -> None:
    """`db` is the package's name here and in the Lambda asset; `jobstack` is its name for web apps."""
    import jobstack  # type: ignore[import-not-found]  # db/ under its installed name (pip install -e .)

    assert db.publish.__module__ == "db.publishing" and jobstack.publish.__module__ == "jobstack.publishing"
    assert set(db.__all__) == set(jobstack.__all__)
