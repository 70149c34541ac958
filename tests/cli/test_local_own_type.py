"""`jobstack local --publish TYPE PAYLOAD`: try a job type of your own on this machine in one command, with the
embedded SQS and SQLite, and nothing else to start. A type the worker cannot run, or a payload its schema
refuses, is one line before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from tests.support.worker_support import Calls

pytestmark = pytest.mark.e2e


def test_one_command_publishes_your_type_and_runs_it_to_completion(
    calls: Calls, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DATABASE_URL", "QUEUE_URL", "DLQ_URL", "JOBS_ENV"):
        monkeypatch.delenv(name, raising=False)
    database = tmp_path / "mine.sqlite3"
    code = main(["local", "--sqlite", str(database), "--publish", "count-calls", '{"n": 3}'])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [run["payload"] for run in calls.runs] == [{"n": 3}]
    assert "count-calls  completed" in out
    assert f"embedded: database sqlite:///{database}" in err and "dead-letter queue http://" in err


@pytest.mark.parametrize(
    ("publish", "line"),
    [
        (["nope", "{}"], "error: --publish nope: unknown job type 'nope': declare it with register_job_type()"),
        (["count-calls", '{"n": "three"}'], "error: --publish count-calls: invalid payload"),
        (["count-calls", "{n: 3}"], "error: --publish count-calls: the payload is not valid JSON"),
    ],
)
def test_a_job_it_could_not_run_is_one_line_before_anything_starts(
    calls: Calls, publish: list[str], line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "mine.sqlite3"
    assert main(["local", "--sqlite", str(database), "--publish", *publish]) == 2
    [printed] = capsys.readouterr().err.strip().splitlines()
    assert printed.startswith(line), printed
    assert not database.exists(), "nothing was started or written"


def test_the_run_names_its_database_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pg_url: str, calls: Calls
) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(pg_url).set(password="s3cret-pw").render_as_string(hide_password=False)  # trust auth: any
    assert main(["local", "--database-url", url, "--publish", "count-calls", '{"n": 1}']) == 0
    out, err = capsys.readouterr()
    assert "embedded: database " in err and "s3cret-pw" not in out + err


def test_a_handler_naming_an_undefined_rate_limit_is_one_line_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reported: `jobstack local --publish charge '{}'` printed a traceback per invocation, then waited for the
    queue to empty for ever. The worker's own start-up check now runs before anything is published."""
    from tests.support.worker_support import CountCalls, job_type_for_test

    for name in ("DATABASE_URL", "QUEUE_URL", "DLQ_URL", "JOBS_ENV"):
        monkeypatch.delenv(name, raising=False)
    database = tmp_path / "mine.sqlite3"
    with job_type_for_test("charge", CountCalls, lambda ctx: None, max_attempts=3, rate_limit="stripe"):
        code = main(["local", "--sqlite", str(database), "--publish", "charge", "{}"])
    [printed] = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert printed == (
        "error: handler for 'charge' takes its tokens from rate limit 'stripe', which the settings' rate_limits do "
        "not define (defined: none)"
    )
    assert not database.exists(), "nothing was started or written"
