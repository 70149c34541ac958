"""Every `jobstack` command, including the bad-input cases: one line, the right exit code, nothing written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import text

from cli.main import main
from cli.target import Target
from db import (
    DB,
    JobStatus,
    Queue,
    claim_job,
    complete_job,
    fail_job,
    get_job,
    list_jobs,
    publish,
    requeue_job,
    utcnow,
)
from db.claiming import Invocation
from db.migrate import head
from tests.support.cli_runner import Jobs
from tests.support.esm import FakeLambdaContext, acknowledge, drain, receive_event
from tests.support.factories import insert_job
from tests.support.queues import moto_mapping
from tests.support.worker_support import Calls
from worker.batch import process_batch
from worker.runtime import Runtime

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_publish_writes_the_row_then_sends(jobs: Jobs, pg_db: DB, queue: Queue) -> None:
    result = jobs("publish", "test-echo", "--payload", '{"hello": "world"}', "--json")
    assert result.code == 0, result.err
    job_id = uuid.UUID(json.loads(result.out)["id"])
    row = get_job(pg_db, job_id)
    assert row is not None and row.status is JobStatus.PENDING and row.payload == {"hello": "world"}
    [message] = drain(queue)
    assert json.loads(message["Body"])["jobId"] == str(job_id)


def test_publish_with_a_priority_keeps_it_on_the_row(jobs: Jobs, pg_db: DB, queue: Queue) -> None:
    """One queue (no lanes): the job runs there, and keeps its priority for a stack that adds the lane."""
    result = jobs("publish", "test-echo", "--priority", "high")
    assert result.code == 0, result.err
    assert result.out.strip().endswith("(pending, priority high)")
    [row] = list_jobs(pg_db)
    assert row.priority == "high" and len(drain(queue)) == 1
    for bad in ("x" * 25, "Bogus Lane"):  # the library's rule, written once (tests/db/test_request_rules.py)
        refused = jobs("publish", "test-echo", "--priority", bad)
        assert refused.code == 2 and refused.err.strip() == (
            "error: priority must name a priority lane (1-24 lowercase letters, digits and single hyphens, as the "
            f"stack's pools declare it), got {bad!r}"
        )
    assert len(list_jobs(pg_db)) == 1


def test_publish_from_a_file_with_an_idempotency_key(jobs: Jobs, tmp_path: Path, queue: Queue) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text('{"n": 1}')
    first = jobs("publish", "test-echo", "--payload-file", str(payload), "--key", "k1", "--json")
    second = jobs("publish", "test-echo", "--payload-file", str(payload), "--key", "k1", "--json")
    assert json.loads(first.out)["id"] == json.loads(second.out)["id"]
    assert len(drain(queue)) == 1


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (
            ["publish", "test-echo", "--payload", "{nope"],
            2,
            "error: --payload is not valid JSON: Expecting property name",
        ),
        (["publish", "no-such-type"], 2, "error: unknown job type 'no-such-type'"),
        (["publish", "test-echo", "--payload", "[1, 2]"], 2, "expected a JSON object, got an array"),
        (["publish", "test-echo", "--delay", "901"], 2, "delay_seconds must be between 0 and 900"),
        (["publish", "test-echo", "--payload-file", "/nonexistent.json"], 2, "cannot read --payload-file"),
        (["show", str(uuid.UUID(int=1))], 1, "error: no job 00000000-0000-0000-0000-000000000001"),
        (["retry"], 2, "give job ids, or --status"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    jobs: Jobs, pg_db: DB, queue: Queue, argv: list[str], code: int, says: str
) -> None:
    result = jobs(*argv)
    assert result.code == code
    assert says in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err
    with pg_db.begin() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM background_jobs").scalar_one() == 0
    assert drain(queue) == []


def test_missing_urls_name_what_to_pass(jobs: Jobs) -> None:
    result = jobs("publish", "test-echo", connect=False)
    assert result.code == 2
    assert result.err.strip() == "error: no database: pass --database-url URL, set DATABASE_URL, or --env ENV"


def test_an_unreachable_database_is_one_line_from_the_console_script(queue: Queue) -> None:
    result = subprocess.run(
        [str(ROOT / ".venv/bin/jobstack"), "list", "--database-url", "postgresql://app:hunter2@127.0.0.1:1/jobs"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: database unavailable:")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "hunter2" not in result.stderr


def test_python_dash_m_works_too() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "--help"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "publish" in result.stdout and "dlq" in result.stdout


def test_show_and_list(jobs: Jobs, pg_db: DB) -> None:
    failed = insert_job(pg_db, status=JobStatus.FAILED, attempts=2)
    pending = insert_job(pg_db)
    shown = jobs("show", str(failed.id))
    assert shown.code == 0
    assert "status" in shown.out and "failed" in shown.out
    listed = json.loads(jobs("list", "--status", "failed", "--json").out)
    assert [j["id"] for j in listed] == [str(failed.id)]
    table = jobs("list").out
    assert str(pending.id) in table and str(failed.id) in table
    assert table.splitlines()[0].split()[:3] == ["ID", "TYPE", "STATUS"]


def test_show_lists_every_attempt_as_it_ended(jobs: Jobs, pg_db: DB) -> None:
    job = insert_job(pg_db, max_attempts=2)
    for attempt, settle in ((1, "fail"), (2, "complete")):
        named = Invocation(f"request-{attempt}", f"1-6756a1b2-{attempt:024x}")
        claim_job(pg_db, job.id, stale_after=timedelta(minutes=5), invocation=named)
        if settle == "fail":
            fail_job(pg_db, job.id, "ConnectionError: reset by peer", attempt=attempt)
        else:
            complete_job(pg_db, job.id, attempt=attempt)
    shown = json.loads(jobs("show", str(job.id), "--json").out)
    assert [(a["attempt"], a["outcome"], a["error"], a["request_id"]) for a in shown["history"]] == [
        (1, "failed", "ConnectionError: reset by peer", "request-1"),
        (2, "completed", None, "request-2"),
    ]
    assert shown["history"][0]["trace_id"] == f"1-6756a1b2-{1:024x}"
    text = jobs("show", str(job.id)).out
    assert "attempts (2), each as it ended:" in text and "ConnectionError: reset by peer" in text
    assert "REQUEST ID" in text and "request-1" in text


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_list_by_payload_finds_one_customers_jobs(jobs: Jobs, database: str, request: pytest.FixtureRequest) -> None:
    db: DB = request.getfixturevalue("pg_db" if database == "postgresql" else "sqlite_db")
    url = db.engine.url.render_as_string(hide_password=False)
    theirs = [insert_job(db, payload={"customer_id": 4711, "address": {"city": c}}) for c in ("Oslo", "Bergen")]
    insert_job(db, payload={"customer_id": "4711"})
    insert_job(db, payload={"customer_id": 42, "address": {"city": "Oslo"}})

    def found(search: str) -> set[str]:
        listed = jobs("list", "--payload", search, "--json", "--database-url", url, connect=False)
        return {j["id"] for j in json.loads(listed.out)}

    assert found("customer_id=4711") == {str(j.id) for j in theirs}
    assert found('{"customer_id": 4711}') == {str(j.id) for j in theirs}
    assert found("customer_id=4711, address.city=Oslo") == {str(theirs[0].id)}
    assert found("customer_id=nobody") == set()


def test_stats_counts_jobs_and_queues(jobs: Jobs, pg_db: DB, queue: Queue, dlq: Queue) -> None:
    publish(pg_db, "test-echo", {}, queue=queue)
    insert_job(pg_db, status=JobStatus.FAILED)
    dlq.client.send_message(QueueUrl=dlq.url, MessageBody="{}")
    data = json.loads(jobs("stats", "--json").out)
    assert {"status": "pending", "type": "test-echo", "count": 1} in data["jobs"]
    assert {"status": "failed", "type": "test-echo", "count": 1} in data["jobs"]
    assert data["queue"]["visible"] == 1
    assert data["dlq_depth"] == 1
    assert data["oldest_pending_job_seconds"] >= 0


def test_stats_shows_the_last_hours_queue_wait_per_type(jobs: Jobs, pg_db: DB) -> None:
    """p50 and p95 of publish-to-start over first attempts (a retry's start is mostly its backoff: left out),
    the figures JobQueueWait emits per job."""
    now = utcnow()
    for wait in range(1, 21):
        created = now - timedelta(minutes=5)
        started = created + timedelta(seconds=wait)
        insert_job(pg_db, status=JobStatus.COMPLETED, attempts=1, created_at=created, started_at=started,
                   completed_at=started + timedelta(seconds=1), updated_at=now)  # fmt: skip
    retried = now - timedelta(minutes=50)
    insert_job(pg_db, status=JobStatus.COMPLETED, attempts=2, created_at=retried, started_at=now - timedelta(seconds=5),
               completed_at=now, updated_at=now)  # fmt: skip
    data = json.loads(jobs("stats", "--json").out)
    assert data["queue_wait"] == [{"type": "test-echo", "jobs": 21, "p50_seconds": 10.5, "p95_seconds": 19.05}]
    text = jobs("stats").out
    assert "QUEUE WAIT P50" in text and re.search(r"test-echo\s+21\s+10\.5 s\s+19\.\d s", text), text


def test_retry_republishes_with_the_same_id_and_refuses_completed(jobs: Jobs, pg_db: DB, queue: Queue) -> None:
    failed = insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5)
    done = insert_job(pg_db, status=JobStatus.COMPLETED, attempts=1)
    result = jobs("retry", str(failed.id), str(done.id))
    assert result.code == 1
    assert f"refused {done.id}: it is completed (use --force to run it again)" in result.err
    row = get_job(pg_db, failed.id)
    assert row is not None and row.status is JobStatus.PENDING and row.attempts == 0
    assert [json.loads(m["Body"])["jobId"] for m in drain(queue)] == [str(failed.id)]
    assert jobs("retry", str(done.id), "--force").code == 0
    assert [json.loads(m["Body"])["jobId"] for m in drain(queue)] == [str(done.id)]


def test_bulk_retry_by_status_and_type(jobs: Jobs, pg_db: DB, queue: Queue) -> None:
    targets = [insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5) for _ in range(3)]
    insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5, type="other-type")
    waiting = insert_job(pg_db, status=JobStatus.FAILED, attempts=1, max_attempts=5)  # its retry is queued
    result = jobs("retry", "--status", "failed", "--type", "test-echo", "--json")
    assert result.code == 1
    report = json.loads(result.out)
    assert sorted(report["retried"]) == sorted(str(j.id) for j in targets)
    assert [r["id"] for r in report["refused"]] == [str(waiting.id)]
    assert len(drain(queue)) == 3


def test_retry_refuses_a_job_whose_message_is_live_unless_forced(jobs: Jobs, pg_db: DB, queue: Queue) -> None:
    """Reported: retrying a pending job sent a second message; the two copies spent all 5 attempts in 3 s,
    past the backoff, and left two dead letters. A pending job, or a failed one with attempts left, has a
    live message: refused, saying what --force would do."""
    job = publish(pg_db, "test-echo", {"n": 1}, queue=queue)
    drain(queue)
    result = jobs("retry", str(job.id))
    assert result.code == 1
    assert f"refused {job.id}: it is pending, its message already queued: --force sends a second one" in result.err
    assert drain(queue) == []
    assert jobs("retry", str(job.id), "--force").code == 0
    assert len(drain(queue)) == 1


def test_forcing_a_cancelled_scheduled_job_runs_it_now_without_its_old_error(
    jobs: Jobs, pg_db: DB, queue: Queue
) -> None:
    job = insert_job(pg_db, status=JobStatus.CANCELLED, run_at=utcnow() + timedelta(days=2), error="cancelled")
    result = jobs("retry", str(job.id))
    assert f"refused {job.id}: it is cancelled (use --force to run it again)" in result.err
    assert jobs("retry", str(job.id), "--force").code == 0
    row = get_job(pg_db, job.id)
    assert row is not None and row.status is JobStatus.PENDING
    assert row.run_at is None and row.error is None
    [message] = drain(queue)
    assert "DelaySeconds" not in message and json.loads(message["Body"])["jobId"] == str(job.id)


def test_stats_finds_the_oldest_pending_job_among_150k_with_only_a_database(jobs: Jobs, pg_db: DB, pg_url: str) -> None:
    """Reported: the oldest pending job was taken from the newest 100,000 rows, wrong beyond them; and
    stats needed the queues. One min() in SQL; the queues' lines say they were not given."""
    oldest = insert_job(pg_db, created_at=utcnow() - timedelta(days=3))
    with pg_db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO background_jobs (id, type, payload, status, attempts, max_attempts, created_at,"
                " updated_at) SELECT gen_random_uuid(), 'test-echo', '{}'::jsonb, 'pending', 0, 5,"
                " now() - make_interval(secs => n), now() FROM generate_series(1, 150000) AS n"
            )
        )
    result = jobs("stats", "--json", "--database-url", pg_url, connect=False)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert abs(data["oldest_pending_job_seconds"] - (utcnow() - oldest.created_at).total_seconds()) < 60
    assert data["queue"] is None and data["dlq_depth"] is None
    assert "not given" in jobs("stats", "--database-url", pg_url, connect=False).out


class RefusesOne:
    """SQS that refuses one given job's message and counts the batch calls."""

    def __init__(self, client: Any, refused: str) -> None:
        self._client, self._refused = client, refused
        self.batches: list[int] = []

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.batches.append(len(kwargs["Entries"]))
        keep = [e for e in kwargs["Entries"] if self._refused not in e["MessageBody"]]
        refused = [e for e in kwargs["Entries"] if self._refused in e["MessageBody"]]
        response = self._client.send_message_batch(QueueUrl=kwargs["QueueUrl"], Entries=keep) if keep else {}
        failed = [
            {"Id": e["Id"], "Code": "KMS.ThrottlingException", "Message": "slow down", "SenderFault": False}
            for e in refused
        ]
        return {"Successful": response.get("Successful", []), "Failed": failed}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_bulk_retry_pages_sends_ten_per_call_and_goes_on_past_refusals(
    jobs: Jobs, pg_db: DB, queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = [insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5) for _ in range(25)]
    sqs = RefusesOne(queue.client, str(failed[3].id))
    monkeypatch.setattr(Target, "sqs", property(lambda _self: sqs))
    result = jobs("retry", "--status", "failed")
    assert result.code == 1
    assert "retried 25 job(s); refused 0; not found 0; message refused by SQS 1" in result.out
    assert f"not sent {failed[3].id}: KMS.ThrottlingException: slow down" in result.err
    assert sqs.batches == [10, 10, 5]
    assert len(drain(queue)) == 24
    rows = {get_job(pg_db, j.id).status for j in failed}  # type: ignore[union-attr]
    assert rows == {JobStatus.PENDING}, "every job has fresh attempts; the refused one's message is the sweeper's"


def test_migrate_an_embedded_database(tmp_path: Path, jobs: Jobs) -> None:
    result = jobs("migrate", "--database-url", f"sqlite:///{tmp_path / 'x.db'}", connect=False)
    assert result.code == 0
    assert result.out.strip().endswith(f"at revision {head()}")


def test_logs_filters_to_one_job(jobs: Jobs, aws: None) -> None:
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName="/aws/lambda/worker")
    logs.create_log_stream(logGroupName="/aws/lambda/worker", logStreamName="s")
    wanted, other = uuid.uuid4(), uuid.uuid4()
    now = int(__import__("time").time() * 1000)
    logs.put_log_events(
        logGroupName="/aws/lambda/worker",
        logStreamName="s",
        logEvents=[
            {"timestamp": now, "message": json.dumps({"job_id": str(wanted), "outcome": "succeeded"})},
            {"timestamp": now + 1, "message": json.dumps({"job_id": str(other), "outcome": "retry"})},
        ],
    )
    result = jobs("logs", "--job", str(wanted), "--log-group", "/aws/lambda/worker", "--since", "10m", connect=False)
    assert result.code == 0
    assert str(wanted) in result.out
    assert str(other) not in result.out
    assert result.err == ""

    none = jobs(
        "logs", "--job", str(uuid.uuid4()), "--log-group", "/aws/lambda/worker", "--since", "10m", connect=False
    )
    assert none.code == 0 and none.out == ""
    [why] = none.err.strip().splitlines()  # reported: nothing at all was printed, with no word why
    assert why.startswith("no log lines in /aws/lambda/worker since ") and "--since 1d looks further back" in why


def test_pause_and_resume_toggle_the_event_source_mapping(jobs: Jobs, queue: Queue, aws: None) -> None:
    mapping = moto_mapping(queue)
    lambda_ = boto3.client("lambda", region_name="us-east-1")
    paused = jobs("pause", "--mapping-id", mapping, connect=False)
    assert paused.code == 0 and "paused" in paused.out
    assert lambda_.get_event_source_mapping(UUID=mapping)["State"] in ("Disabled", "Disabling")
    assert jobs("resume", "--mapping-id", mapping, connect=False).code == 0
    assert lambda_.get_event_source_mapping(UUID=mapping)["State"] in ("Enabled", "Enabling")


def test_commands_needing_the_stack_say_so_without_env(jobs: Jobs) -> None:
    result = jobs("pause", connect=False)
    assert result.code == 2
    assert (
        result.err.strip() == "error: needs the deployed stack's EventSourceMappingId: pass --env ENV (or --mapping-id)"
    )


def test_env_reads_urls_and_the_database_from_the_deployed_stack(
    capsys: pytest.CaptureFixture[str],
    pg_url: str,
    pg_db: DB,
    queue: Queue,
    dlq: Queue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("DATABASE_URL", "QUEUE_URL", "DLQ_URL"):
        monkeypatch.delenv(name, raising=False)
    secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="db", SecretString=pg_url)[
        "ARN"
    ]
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "placeholder"}}},
        "Outputs": {
            "QueueUrl": {"Value": queue.url},
            "DeadLetterQueueUrl": {"Value": dlq.url},
            "DatabaseSecretArn": {"Value": secret},
        },
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="JobsStack-dev", TemplateBody=json.dumps(template)
    )
    assert main(["publish", "test-echo", "--env", "dev", "--json"]) == 0
    job_id = uuid.UUID(json.loads(capsys.readouterr().out)["id"])
    assert get_job(pg_db, job_id) is not None
    assert len(drain(queue)) == 1
    assert main(["stats", "--env", "staging"]) == 1
    assert "cannot read stack JobsStack-staging" in capsys.readouterr().err


def test_prune_deletes_old_history_and_a_dry_run_only_counts(jobs: Jobs, pg_db: DB) -> None:
    old = utcnow() - timedelta(days=40)
    done = [insert_job(pg_db, status=JobStatus.COMPLETED, attempts=1, updated_at=old) for _ in range(3)]
    dead = insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5, updated_at=old)
    retrying = insert_job(pg_db, status=JobStatus.FAILED, attempts=1, updated_at=old)
    dry = jobs("prune", "--older-than", "30d", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert json.loads(dry.out) == {"dry_run": True, "completed": 3, "failed": 1, "cancelled": 0}
    assert all(get_job(pg_db, j.id) is not None for j in done)
    result = jobs("prune", "--older-than", "30d")
    assert result.code == 0, result.err
    assert result.out.strip() == "deleted 3 completed job(s), deleted 1 failed job(s), deleted 0 cancelled job(s)"
    assert get_job(pg_db, dead.id) is None
    assert get_job(pg_db, retrying.id) is not None  # attempts left: live work, never pruned


def test_prune_older_than_0d_means_every_such_job_now(jobs: Jobs, pg_db: DB) -> None:
    """Reported: `--older-than 0d` said "nothing to prune"; 0 days is an operator's explicit age, not the
    settings' "keep forever"."""
    done = insert_job(pg_db, status=JobStatus.COMPLETED, attempts=1, updated_at=utcnow() - timedelta(seconds=5))
    result = jobs("prune", "--older-than", "0d", "--status", "completed")
    assert result.code == 0 and result.out.strip() == "deleted 1 completed job(s)"
    assert get_job(pg_db, done.id) is None


def test_show_prints_the_jobs_id_type_and_payload(jobs: Jobs, pg_db: DB, queue: Queue) -> None:
    job = publish(pg_db, "test-echo", {"hello": "world"}, queue=queue)
    shown = dict(line.split(None, 1) for line in jobs("show", str(job.id)).out.strip().splitlines())
    assert (shown["id"], shown["type"], shown["payload"]) == (str(job.id), "test-echo", '{"hello":"world"}')


def test_show_finds_a_job_by_the_start_of_its_id(jobs: Jobs, pg_db: DB) -> None:
    """A table cut on a narrow terminal shows the start of an id: enough of it names the job."""
    job = insert_job(pg_db)
    shown = dict(line.split(None, 1) for line in jobs("show", str(job.id)[:8]).out.strip().splitlines())
    assert shown["id"] == str(job.id)
    missing = "0" * 8 if not str(job.id).startswith("0" * 8) else "f" * 8
    refused = jobs("show", missing)
    assert (refused.code, refused.err.strip()) == (1, f"error: no job's id starts with {missing!r}")
    twin = insert_job(pg_db, id=uuid.UUID(str(job.id)[:8] + "-0000-4000-8000-000000000000"))
    assert twin.id != job.id
    ambiguous = jobs("show", str(job.id)[:8])
    assert ambiguous.code == 2 and ambiguous.err.strip().endswith("give more of it")


def test_show_prints_a_long_error_whole(jobs: Jobs, pg_db: DB) -> None:
    """Reported: `jobstack show` cut the error, the one field an operator opens it for."""
    error = "ValueError: " + "the upstream said no; " * 20 + "the end"
    job = insert_job(pg_db, status=JobStatus.FAILED, attempts=1, max_attempts=5, error=error)
    shown = dict(line.split(None, 1) for line in jobs("show", str(job.id)).out.strip().splitlines())
    assert shown["error"] == error


def test_prune_with_a_bad_age_is_bad_usage_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse's own exit, as for every option of the wrong type
        main(["prune", "--older-than", "a while"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [  # the line alone, no usage block before it
        "error: jobstack prune: argument --older-than: 'a while' is not a duration like 30d, 12h or 90m "
        "(see `jobstack prune --help`)"
    ]


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["show", "not-a-uuid"], "error: jobstack show: argument id: 'not-a-uuid' is not a job id or the start of one"),
        (
            ["publish", "test-echo", "--at", "tomorrow"],
            "error: jobstack publish: argument --at: 'tomorrow' is not an ISO",
        ),
        (["publish", "test-echo", "--in", "3x"], "error: jobstack publish: argument --in: '3x' is not a duration"),
        (["cost", "--jobs-per-month", "-5"], "error: jobstack cost: argument --jobs-per-month: -5 must be at least 1"),
        (["lsit"], "error: jobstack: argument COMMAND: invalid choice: 'lsit'"),
        (
            ["publish", "t", "--in", "-3h"],
            "error: jobstack publish: argument --in: expected one argument (a value that",
        ),
        (["publish", "t", "--in=-3h"], "error: jobstack publish: argument --in: '-3h': a duration is never negative"),
        (
            ["list", "--payload", "customer_id"],
            "error: jobstack list: argument --payload: payload search 'customer_id' is not key=value",
        ),
        (
            ["list", "--payload", "{customer_id: 1}"],
            "error: jobstack list: argument --payload: payload search is not JSON (Expecting property name",
        ),
    ],
)
def test_every_usage_error_is_one_line(argv: list[str], line: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    [printed] = capsys.readouterr().err.strip().splitlines()
    assert printed.startswith(line) and printed.endswith("--help`)"), printed


def test_a_past_at_is_refused_unless_meant(jobs: Jobs, pg_db: DB) -> None:
    """A time more than a minute ago is almost always a typo (a year, a month): refused in one line."""
    result = jobs("publish", "test-echo", "--at", "2020-01-01T00:00Z")
    assert result.code == 2 and result.out == ""
    assert result.err.strip() == (
        "error: --at 2020-01-01 00:00 UTC is in the past (a typo?): give a future time, or add --allow-past to run "
        "the job now"
    )
    assert list_jobs(pg_db) == [], "nothing written"
    meant = jobs("publish", "test-echo", "--at", "2020-01-01T00:00Z", "--allow-past")
    assert meant.code == 0 and "published test-echo job" in meant.out


def test_local_refuses_a_stale_window_inside_the_timeout(jobs: Jobs) -> None:
    result = jobs("local", "--until-empty", "--timeout", "60", "--stale-after", "30")
    assert result.code == 2
    assert result.err.strip() == (
        "error: --stale-after (30) must exceed the function timeout (60 s), or a live invocation's job would be "
        "taken from it: raise it or lower --timeout"
    )


def test_jobs_cancel_refuses_completed_and_cancels_by_status(
    jobs: Jobs, pg_db: DB, queue: Queue, runtime: Runtime, calls: Calls
) -> None:
    done = publish(pg_db, "count-calls", {}, queue=queue)
    event = receive_event(queue)
    acknowledge(queue, event, process_batch(event, FakeLambdaContext(), runtime))
    result = jobs("cancel", str(done.id))
    assert result.code == 1 and result.err.strip() == f"refused {done.id}: it is completed"
    assert result.out == "", "no 'cancelled 0 job(s)' before the refusal"
    waiting = [publish(pg_db, "count-calls", {"n": n}, queue=queue) for n in range(3)]
    result = jobs("cancel", "--status", "pending", "--type", "count-calls")
    assert result.code == 0 and result.out.startswith("cancelled 3 job(s)")
    assert {get_job(pg_db, j.id).status for j in waiting} == {JobStatus.CANCELLED}  # type: ignore[union-attr]
    assert requeue_job(pg_db, waiting[0].id) is None, "a cancelled job is retried only with --force"
    assert requeue_job(pg_db, waiting[0].id, force=True) is not None


def test_the_command_line_schedules_lists_shows_and_cancels(jobs: Jobs, pg_db: DB) -> None:
    result = jobs("publish", "test-echo", "--in", "3h")
    assert result.code == 0 and "(scheduled, runs at " in result.out
    listed = jobs("list", "--status", "scheduled", "--json")
    [row] = json.loads(listed.out)
    assert row["status"] == "scheduled" and row["run_at"] is not None
    assert "run_at" in jobs("show", row["id"]).out
    at = jobs("publish", "test-echo", "--at", "2099-12-01T09:00Z")
    assert at.code == 2 and "at most 366 days ahead" in at.err
    cancelled = jobs("cancel", "--status", "scheduled")
    assert cancelled.code == 0 and cancelled.out.startswith("cancelled 1 job(s)")


def test_publish_takes_every_job_option_as_a_flag(jobs: Jobs, pg_db: DB, queue: Queue) -> None:
    """The flags are JobOptions' keys (cli/job_options.py): what a web app can ask of publish, the CLI can."""
    first = jobs("publish", "test-echo", "--unique-key", "report-7", "--max-attempts", "2", "--json")
    again = jobs("publish", "test-echo", "--unique-key", "report-7", "--json")
    assert first.code == 0 and again.code == 0, (first.err, again.err)
    first_id = uuid.UUID(json.loads(first.out)["id"])
    assert uuid.UUID(json.loads(again.out)["id"]) == first_id  # one job per type and key not started yet
    waiting = jobs("publish", "test-echo", "--after", str(first_id), "--on-failure", "continue",
                   "--concurrency-key", "tenant-9", "--json")  # fmt: skip
    assert waiting.code == 0, waiting.err
    rows = {row.id: row for row in list_jobs(pg_db)}
    assert rows[first_id].max_attempts == 2 and rows[first_id].unique_key == "report-7"
    later = rows[uuid.UUID(json.loads(waiting.out)["id"])]
    assert later.status is JobStatus.WAITING and later.concurrency_key == "tenant-9"
    refused = jobs("publish", "test-echo", "--on-conflict", "replace")  # the library's rule, written once
    assert refused.code == 2 and refused.err.count("\n") == 1 and "unique_key" in refused.err, refused.err
    assert len(list_jobs(pg_db)) == 2
