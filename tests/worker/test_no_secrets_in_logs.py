"""No database password in any output, at any level, in the Lambda runtime's shape.

Lambda's Python runtime installs its own handler on the root logger and sets the root logger to the
function's application log level (https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html), so
every library logger without a level of its own logs at that level too. Here the root logger is at DEBUG
with a handler that keeps everything, the URL comes from (moto's) Secrets Manager with a password, and a
batch runs every path: success, retry, last-attempt failure to the DLQ, a garbled message, and a handler
that logs and raises with the URL in hand.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from sqlalchemy.engine import make_url

import worker.handler
from db import DB, Queue, publish
from tests.support.esm import FakeLambdaContext, drain, receive_event
from tests.support.worker_support import Calls

pytestmark = pytest.mark.integration
PASSWORD = "Tr0ub4dor-3-horse"  # PostgreSQL here trusts local connections, so any password connects


@pytest.fixture
def runtime_shaped_root() -> Iterator[io.StringIO]:
    """The root logger as Lambda's runtime leaves it with ApplicationLogLevel DEBUG: one handler, DEBUG."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in ("botocore", "urllib3", "psycopg", "sqlalchemy")}
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root.handlers = [handler]
    root.setLevel(logging.DEBUG)
    for name in saved_levels:
        logging.getLogger(name).setLevel(logging.NOTSET)  # as a fresh process has them
    yield sink
    root.handlers, root.level = saved_handlers, saved_level
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)


def test_the_password_appears_nowhere_at_debug(
    pg_url: str,
    pg_db: DB,
    queue: Queue,
    dlq: Queue,
    calls: Calls,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    runtime_shaped_root: io.StringIO,
) -> None:
    url = make_url(pg_url).set(username="postgres", password=PASSWORD).render_as_string(hide_password=False)
    arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="db", SecretString=url)["ARN"]
    for name, value in {
        "DATABASE_SECRET_ARN": arn,
        "QUEUE_URL": queue.url,
        "DLQ_URL": dlq.url,
        "LOG_LEVEL": "DEBUG",
        "JOB_BACKOFF_BASE_SECONDS": "0",
        "AWS_LAMBDA_FUNCTION_NAME": "worker",  # EMF lines are printed too
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    def behaviour(ctx: Any) -> None:
        if ctx.payload["n"] == 1:
            ctx.log.debug("connecting with %s", url)  # a careless handler
            raise ConnectionError(f"could not reach {url}")

    calls.behaviour = behaviour
    publish(pg_db, "count-calls", {"n": 0}, queue=queue)
    publish(pg_db, "count-calls", {"n": 1}, queue=queue)
    publish(pg_db, "test-echo", {"fail": f"declined by {url}"}, queue=queue, max_attempts=1)
    queue.client.send_message(QueueUrl=queue.url, MessageBody=json.dumps({"jobId": "x", "password": PASSWORD}))
    caplog.set_level(logging.DEBUG)
    event = receive_event(queue)
    runtime_shaped_root.seek(0)
    runtime_shaped_root.truncate()  # only what the invocation logs (the test's own setup used boto3 too)
    caplog.clear()
    worker.handler.reset_runtime()
    try:
        with caplog.at_level(logging.DEBUG):
            response = worker.handler.handler(event, FakeLambdaContext())
    finally:
        worker.handler.reset_runtime()
    assert len(response["batchItemFailures"]) == 1  # the retry; the rest succeeded or were dead-lettered
    letters = drain(dlq)
    assert len(letters) == 2
    reasons = [json.dumps(letter.get("MessageAttributes", {})) for letter in letters]
    with pg_db.engine.connect() as conn:
        errors = [str(e) for (e,) in conn.exec_driver_sql("SELECT error FROM background_jobs WHERE error IS NOT NULL")]
    assert errors and any("could not reach" in e for e in errors), "the handler's error was stored"

    out = capsys.readouterr()
    logged = runtime_shaped_root.getvalue()
    assert "Response body" not in logged, "botocore's DEBUG lines stay off whatever the root level"
    assert "job outcome" in logged, "the sink did capture the worker's lines"
    outputs = {"root handler": logged, "stdout": out.out, "stderr": out.err, "caplog": caplog.text}
    outputs |= {"the DLQ's reason attributes": "\n".join(reasons), "the rows' error column": "\n".join(errors)}
    for where, text in outputs.items():
        assert PASSWORD not in text, f"the password reached {where}"
    assert "Tr0ub4dor" in url  # the URL really holds it, so the checks above could fail
