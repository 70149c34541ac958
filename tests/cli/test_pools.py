"""`jobstack` with worker pools: `--pool` picks a pool's queue, DLQ and event source mapping from the stack's
outputs, publishing with `--env` routes by the `Routes` output, `stats` shows a row per pool, `routes`
prints the web app's one line, and `local --pool` runs one pool's worker (FIFO included) on this machine.
Real PostgreSQL, moto's SQS, CloudFormation (outputs) and Lambda (mappings)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

import cli.target
from cli.main import main
from db import DB, Job, JobStatus, Queue, create_db, list_jobs
from tests.support.cli_runner import Result
from tests.support.esm import drain
from tests.support.queues import queue_pair

pytestmark = pytest.mark.integration

REGION = "us-east-1"


@pytest.fixture
def pooled(
    aws: None, sqs: Any, pg_url: str, queue: Queue, dlq: Queue, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """A deployed JobsStack-dev's outputs with three pools: default, video (runs test-echo), ledger (FIFO)."""
    for name in ("DATABASE_URL", "QUEUE_URL", "DLQ_URL", "JOBS_ENV"):
        monkeypatch.delenv(name, raising=False)
    (video, video_dlq), (ledger, ledger_dlq) = queue_pair(sqs, "video"), queue_pair(sqs, "ledger", fifo=True)
    urls = {"video": video.url, "video-dlq": video_dlq.url, "ledger": ledger.url, "ledger-dlq": ledger_dlq.url}
    secret = boto3.client("secretsmanager", region_name=REGION).create_secret(Name="db", SecretString=pg_url)["ARN"]
    routes = {"stack": "JobsStack-dev", "queues": {"default": queue.url, "video": urls["video"],
              "ledger": urls["ledger"]}, "types": {"test-echo": "video"}}  # fmt: skip
    outputs = {
        "QueueUrl": queue.url,
        "DeadLetterQueueUrl": dlq.url,
        "DatabaseSecretArn": secret,
        "PoolVideoQueueUrl": urls["video"],
        "PoolVideoDeadLetterQueueUrl": urls["video-dlq"],
        "PoolVideoEventSourceMappingId": _mapping(sqs, urls["video"]),
        "PoolLedgerQueueUrl": urls["ledger"],
        "PoolLedgerDeadLetterQueueUrl": urls["ledger-dlq"],
        "Routes": json.dumps(routes),
    }
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "placeholder"}}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="JobsStack-dev", TemplateBody=json.dumps(template)
    )
    return outputs


def _mapping(sqs: Any, url: str) -> str:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="video-worker", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("worker/handler.py", "def handler(e, c): return {}\n")
    lambda_ = boto3.client("lambda", region_name=REGION)
    lambda_.create_function(
        FunctionName="video-worker", Runtime="python3.13", Role=role, Handler="worker.handler.handler",
        Code={"ZipFile": code.getvalue()},
    )  # fmt: skip
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    uuid: str = lambda_.create_event_source_mapping(EventSourceArn=arn, FunctionName="video-worker", Enabled=False)[
        "UUID"
    ]
    return uuid


def _jobs(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def test_routes_prints_the_web_apps_one_line(pooled: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    result = _jobs(capsys, "routes", "--env", "dev")
    assert result.code == 0, result.err
    line = result.out.strip()
    assert line.startswith("export JOBSTACK_ROUTES='") and line.endswith("'")
    assert json.loads(line.removeprefix("export JOBSTACK_ROUTES='")[:-1]) == json.loads(pooled["Routes"])


def test_publish_with_env_routes_by_type_and_stats_shows_each_pool(
    pooled: dict[str, str], pg_db: DB, sqs: Any, queue: Queue, capsys: pytest.CaptureFixture[str]
) -> None:
    published = _jobs(capsys, "publish", "test-echo", "--env", "dev", "--json")
    assert published.code == 0, published.err
    stats = _jobs(capsys, "stats", "--env", "dev", "--json")
    assert stats.code == 0, stats.err
    rows = {p["pool"]: p for p in json.loads(stats.out)["pools"]}
    assert list(rows) == ["default", "video", "ledger"]
    assert (rows["video"]["visible"], rows["default"]["visible"], rows["ledger"]["visible"]) == (1, 0, 0)
    assert rows["video"]["worker"] == "Disabled" and rows["default"]["worker"] is None
    table = _jobs(capsys, "stats", "--env", "dev")
    assert "POOL" in table.out and "ledger" in table.out
    assert [json.loads(m["Body"])["jobId"] for m in drain(Queue(sqs, pooled["PoolVideoQueueUrl"]))] == [
        json.loads(published.out)["id"]
    ]
    assert drain(queue) == []


def test_pool_picks_its_queues_and_mapping(
    pooled: dict[str, str], sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    lambda_ = boto3.client("lambda", region_name=REGION)
    mapping = pooled["PoolVideoEventSourceMappingId"]
    assert _jobs(capsys, "resume", "--env", "dev", "--pool", "video").code == 0
    assert lambda_.get_event_source_mapping(UUID=mapping)["State"] in ("Enabled", "Enabling")
    assert _jobs(capsys, "pause", "--env", "dev", "--pool", "video").code == 0
    assert lambda_.get_event_source_mapping(UUID=mapping)["State"] in ("Disabled", "Disabling")

    sqs.send_message(QueueUrl=pooled["PoolVideoDeadLetterQueueUrl"], MessageBody="{}")
    peek = _jobs(capsys, "dlq", "peek", "--env", "dev", "--pool", "video", "--json")
    assert peek.code == 0, peek.err
    assert len(json.loads(peek.out)) == 1
    default_peek = _jobs(capsys, "dlq", "peek", "--env", "dev", "--json")
    assert json.loads(default_peek.out) == []

    unknown = _jobs(capsys, "stats", "--env", "dev", "--pool", "nope")
    assert unknown.code == 2
    assert unknown.err.strip() == "error: JobsStack-dev has no pool 'nope' (its pools: default, video, ledger)"


def test_a_fifo_pool_needs_an_ordering_key_from_the_cli_too(
    pooled: dict[str, str], sqs: Any, pg_db: DB, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = _jobs(capsys, "publish", "test-echo", "--env", "dev", "--pool", "ledger")
    assert refused.code == 2 and "needs ordering_key" in refused.err and "\n" not in refused.err.strip()
    assert list_jobs(pg_db) == []
    keyed = _jobs(capsys, "publish", "test-echo", "--env", "dev", "--pool", "ledger", "--ordering-key", "acct-1")
    assert keyed.code == 0, keyed.err
    [message] = sqs.receive_message(QueueUrl=pooled["PoolLedgerQueueUrl"], AttributeNames=["All"])["Messages"]
    assert message["Attributes"]["MessageGroupId"] == "acct-1"


def _run_local_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pools: dict[str, Any],
    pool: str, demo: int,
) -> tuple[Result, list[Job]]:  # fmt: skip
    """`jobstack local --pool POOL --demo N` in a checkout whose dev settings have `pools`: the run's result, and
    the jobs its embedded database holds afterwards."""
    config = json.loads((Path(cli.target.ROOT) / "cdk.json").read_text())
    config["context"]["jobstack"]["environments"]["dev"]["pools"] = pools
    (tmp_path / "cdk.json").write_text(json.dumps(config))
    monkeypatch.setattr(cli.target, "ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "local.db"
    result = _jobs(capsys, "local", "--pool", pool, "--demo", str(demo), "--sqlite", str(database), "--json")
    db = create_db(f"sqlite:///{database}")
    try:
        return result, list_jobs(db, limit=100)
    finally:
        db.dispose()


def test_local_runs_one_pools_worker_fifo_included(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`jobstack local --pool ledger`: the embedded queues are that pool's (FIFO), its settings are the pool's."""
    pools = {"ledger": {"types": ["test-echo"], "fifo": True, "timeout_seconds": 30, "batch_size": 5}}
    result, jobs = _run_local_pool(tmp_path, monkeypatch, capsys, pools, "ledger", 10)
    assert result.code == 0, result.err
    assert "running the worker of pool ledger on http://127.0.0.1:" in result.err
    assert "JobsStack-dev-ledger-jobs.fifo" in result.err
    assert len(jobs) == 10 and {j.ordering_key for j in jobs} == {"demo-0", "demo-1", "demo-2"}
    assert {j.status for j in jobs} == {JobStatus.COMPLETED, JobStatus.FAILED}
    unknown = _jobs(capsys, "local", "--pool", "nope", "--sqlite", str(tmp_path / "local.db"))
    assert unknown.code == 2 and "JobsStack-dev has no pool 'nope' (its pools: default, ledger)" in unknown.err


def test_local_runs_a_priority_lanes_worker_and_its_jobs_carry_the_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`jobstack local --pool urgent` for a lane: its queue, and jobs published there carry its priority, so the
    rows say which lane they ran in (as a Router's would)."""
    result, jobs = _run_local_pool(tmp_path, monkeypatch, capsys, {"urgent": {"priority": "high"}}, "urgent", 5)
    assert result.code == 0, result.err
    assert "JobsStack-dev-urgent-jobs" in result.err
    assert len(jobs) == 5 and {j.priority for j in jobs} == {"high"}
    assert {j.status for j in jobs} == {JobStatus.COMPLETED, JobStatus.FAILED}
