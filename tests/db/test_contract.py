"""The contract for publishers in other languages (docs/publishing-from-other-languages.md): the JSON Schema
agrees with the worker's parser, and the documented SQL, run by `psql`, plus a plain SendMessage, is a job
the worker completes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy.engine import make_url

from db import DB, JobStatus, Queue, get_job
from tests.support.esm import FakeLambdaContext, acknowledge, receive_event
from tests.support.message_contract import ROOT, SCHEMA
from worker.batch import process_batch
from worker.runtime import Runtime

pytestmark = pytest.mark.integration

DOC = ROOT / "docs" / "publishing-from-other-languages.md"


def documented_sql(marker: str) -> str:
    """The SQL block under `<!-- contract:marker -->` in the doc: the test runs what the doc says."""
    found = re.search(rf"<!-- contract:{marker} -->\s*```sql\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert found, f"no contract:{marker} block in {DOC.name}"
    return "\n".join(line.strip() for line in found.group(1).splitlines())


def _psql(url: str, sql: str, **variables: str) -> None:
    psql = shutil.which("psql")
    assert psql, "psql comes with the PostgreSQL client the tests run against"
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    args = [psql, dsn, "-v", "ON_ERROR_STOP=1", "-q"]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    subprocess.run(args, input=sql, text=True, check=True, capture_output=True)


def test_the_documented_psql_command_runs_as_written(pg_url: str, pg_db: DB, tmp_path: Path) -> None:
    """Reported: the doc's `:'job_id'` variables fail with `psql -c`. The doc now shows the invocation, and
    this runs that shell block verbatim, in a plain shell, with insert.sql holding the documented INSERT."""
    found = re.search(r"<!-- contract:psql-insert -->\s*```sh\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert found, "no contract:psql-insert block"
    (tmp_path / "insert.sql").write_text(documented_sql("insert"))
    job_id = uuid.uuid4()
    dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    shell = textwrap.dedent(found.group(1))
    run = subprocess.run(
        ["bash", "-c", shell],
        cwd=tmp_path, env={"PATH": os.environ["PATH"], "DATABASE_URL": dsn, "JOB_ID": str(job_id)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    row = get_job(pg_db, job_id)
    assert row is not None and row.type == "test-echo" and row.payload == {"n": 1} and row.idempotency_key is None


def test_psql_and_a_plain_send_message_publish_a_job_the_worker_completes(
    pg_url: str, pg_db: DB, queue: Queue, runtime: Runtime
) -> None:
    job_id, payload = uuid.uuid4(), {"from": "a TypeScript web app"}
    _psql(
        pg_url, documented_sql("insert"),
        job_id=str(job_id), job_type="test-echo", payload=json.dumps(payload), idempotency_key="",
    )  # fmt: skip
    body = json.dumps({"jobId": str(job_id), "type": "test-echo", "payload": payload})
    jsonschema.validate(json.loads(body), SCHEMA)
    attributes: dict[str, Any] = {"jobType": {"DataType": "String", "StringValue": "test-echo"}}
    queue.client.send_message(QueueUrl=queue.url, MessageBody=body, MessageAttributes=attributes)
    _psql(pg_url, documented_sql("mark-sent"), job_id=str(job_id))
    row = get_job(pg_db, job_id)
    assert row is not None and row.sent_at is not None and row.max_attempts == 5

    event = receive_event(queue)
    acknowledge(queue, event, process_batch(event, FakeLambdaContext(), runtime))
    row = get_job(pg_db, job_id)
    assert row is not None and row.status is JobStatus.COMPLETED and row.payload == payload
