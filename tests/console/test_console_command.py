"""`jobstack console` and `jobstack local --console` as a user runs them: real processes, real HTTP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cli.main import main
from tests.support.console import ROOT, cells, number

pytestmark = pytest.mark.e2e


def _open(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(url, timeout=10) as response:
        return str(response.read().decode())


def test_local_with_console_prints_its_url_then_jobs_console_reopens_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "local.sqlite3"
    for name in ("DATABASE_URL", "QUEUE_URL", "DLQ_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["local", "--demo", "5", "--sqlite", str(database), "--console"]) == 0
    err = capsys.readouterr().err
    during = re.search(r"jobstack console on this run: (http://\S+)", err)
    assert during, err
    with pytest.raises(urllib.error.URLError, match="Connection refused"):  # it stopped with the run
        _open(during.group(1))
    assert f"reopen it on these jobs: jobstack console --sqlite {database}" in err

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "QUEUE_URL", "DLQ_URL"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "console", "--sqlite", str(database), "--port", "0"],
        cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+/\?token=\S+)", line)
        assert url, line
        page = _open(url.group(1))
        totals = {name: number(text) for name, text in cells(page, "data-total").items()}
        assert totals["completed"] == 4 and totals["dead"] == 1  # the demo: 1 in 5 fails for good
        assert str(database) not in page and "local sqlite database" in page
    finally:
        process.terminate()
        process.communicate(timeout=10)  # and its pipes closed


def test_console_on_a_missing_sqlite_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["console", "--sqlite", str(tmp_path / "nope.sqlite3")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --sqlite {tmp_path / 'nope.sqlite3'}: no such file (`make local` leaves .build/local.sqlite3)"
    )


def test_console_on_a_port_in_use_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    database = tmp_path / "local.sqlite3"
    assert main(["migrate", "--database-url", f"sqlite:///{database}"]) == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["console", "--sqlite", str(database), "--port", str(port)]) == 2
    assert f"error: port {port} is in use on 127.0.0.1: pass --port N (0 picks a free one)" in capsys.readouterr().err
