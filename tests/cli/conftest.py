"""Drive `jobstack` as a user would: its real entry point with argv, against real PostgreSQL and moto."""

from __future__ import annotations

import pytest

from cli.main import main
from db import Queue
from tests.support.cli_runner import Jobs, Result, restoring_environ


@pytest.fixture
def jobs(
    capsys: pytest.CaptureFixture[str], pg_url: str, queue: Queue, dlq: Queue, monkeypatch: pytest.MonkeyPatch
) -> Jobs:
    """`jobs(*argv)` with the test database and queues given as flags, the way an operator passes them."""
    for name in ("DATABASE_URL", "QUEUE_URL", "DLQ_URL"):
        monkeypatch.delenv(name, raising=False)

    def run(*argv: str, connect: bool = True) -> Result:
        args = list(argv)
        if connect:
            args += ["--database-url", pg_url, "--queue-url", queue.url, "--dlq-url", dlq.url]
        capsys.readouterr()
        code = main(args)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


_restore_environ = pytest.fixture(autouse=True)(restoring_environ)
