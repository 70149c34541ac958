"""`jobstack local` end to end: its closing summary says what happened to the jobs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli.main import main

pytestmark = pytest.mark.e2e


def test_jobs_local_sums_up_what_happened_to_the_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DATABASE_URL", "QUEUE_URL", "DLQ_URL", "JOBS_ENV"):
        monkeypatch.delenv(name, raising=False)
    saved = dict(os.environ)
    try:
        assert main(["local", "--demo", "5", "--sqlite", str(tmp_path / "local.sqlite3")]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    err = capsys.readouterr().err
    assert "completed 4, failed 1, in flight 0, waiting 0, dead-lettered 1 |" in err
