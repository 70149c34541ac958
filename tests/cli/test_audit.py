"""The audit trail: every operator action of the CLI leaves one row naming who did it (the AWS identity where a
session exists, else the OS user), what was asked (never a payload) and how many jobs it touched; `jobstack
audit` lists them; a trail that cannot be written does not undo the action."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from cli import audit_trail
from db import DB, JobStatus, get_job
from db.admin import JobFilter
from db.audit import describe_filter, recent
from db.payload_search import payload_document
from tests.support.cli_runner import Jobs
from tests.support.factories import insert_job

pytestmark = pytest.mark.integration

#: moto's STS answers GetCallerIdentity with its fixed account's user.
MOTO_IDENTITY = "arn:aws:sts::123456789012:user/moto"


@pytest.fixture(autouse=True)
def _fresh_identity() -> Iterator[None]:
    audit_trail._identity.cache_clear()  # asked once per process: each test its own session
    yield
    audit_trail._identity.cache_clear()


def test_each_action_is_recorded_with_the_aws_identity_and_listed_newest_first(jobs: Jobs, pg_db: DB) -> None:
    failed = [insert_job(pg_db, status=JobStatus.FAILED, attempts=5, max_attempts=5) for _ in range(3)]
    waiting = insert_job(pg_db)
    old = insert_job(pg_db, status=JobStatus.COMPLETED, attempts=1)
    assert jobs("retry", "--status", "failed").code == 0
    assert jobs("cancel", str(waiting.id)).code == 0
    assert jobs("publish", "test-echo", "--payload", '{"card": "4111 1111 1111 1111"}').code == 0
    assert jobs("prune", "--status", "completed", "--older-than", "0d").code == 0
    assert get_job(pg_db, old.id) is None

    entries = recent(pg_db)
    assert [(e.action, e.jobs, e.via, e.actor) for e in entries] == [
        ("prune", 1, "cli", MOTO_IDENTITY),
        ("publish", 1, "cli", MOTO_IDENTITY),
        ("cancel", 1, "cli", MOTO_IDENTITY),
        ("retry", 3, "cli", MOTO_IDENTITY),
    ]
    assert entries[3].selection == "filter: status=failed" and entries[3].outcome.startswith("retried 3 job(s)")
    assert entries[2].selection == f"1 job id(s): {str(waiting.id)[:8]}"
    assert all("4111" not in e.selection + e.outcome for e in entries), "a payload is never in the trail"
    assert entries[0].outcome == "deleted 1 completed"
    assert all(get_job(pg_db, f.id).status is JobStatus.PENDING for f in failed)  # type: ignore[union-attr]

    listed = json.loads(jobs("audit", "--json").out)
    assert [e["action"] for e in listed] == ["prune", "publish", "cancel", "retry"]
    assert [e["action"] for e in json.loads(jobs("audit", "--action", "cancel", "--json").out)] == ["cancel"]
    table = jobs("audit").out
    assert table.splitlines()[0].split()[:4] == ["AT", "WHO", "VIA", "ACTION"] and MOTO_IDENTITY in table


def test_without_an_aws_session_the_os_user_is_recorded_on_sqlite(
    jobs: Jobs, sqlite_db: DB, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    waiting = insert_job(sqlite_db)
    url = sqlite_db.engine.url.render_as_string(hide_password=False)
    assert jobs("cancel", str(waiting.id), "--database-url", url, connect=False).code == 0
    [entry] = recent(sqlite_db)
    assert (entry.action, entry.actor, entry.jobs) == ("cancel", f"os:{getpass.getuser()}", 1)


def test_an_action_whose_record_cannot_be_written_is_done_and_says_so_in_one_line(jobs: Jobs, pg_db: DB) -> None:
    waiting = insert_job(pg_db)
    with pg_db.begin() as conn:  # the trail's table missing, as on a database not yet migrated to it
        conn.execute(text("ALTER TABLE operator_actions RENAME TO operator_actions_away"))
    try:
        result = jobs("cancel", str(waiting.id))
    finally:
        with pg_db.begin() as conn:  # the session's database, as the next test expects it
            conn.execute(text("ALTER TABLE operator_actions_away RENAME TO operator_actions"))
    assert result.code == 0
    assert get_job(pg_db, waiting.id).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    [warning] = result.err.strip().splitlines()
    assert warning.startswith("warning: cancel done, but not recorded in the audit trail (")
    assert warning.endswith("run jobstack migrate")


def test_a_payload_search_is_recorded_by_its_keys_alone() -> None:
    which = JobFilter(status=JobStatus.FAILED, payload=payload_document('{"customer_id": 4711, "a": {"b": "x"}}'))
    words = describe_filter(which)
    assert words == "filter: status=failed payload has keys a.b,customer_id"
    assert "4711" not in words and "x" not in words.split("keys", 1)[1].replace("a.b", "")
