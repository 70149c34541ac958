"""The export line `jobstack local` prints for another shell: shell-quoted, and never with a password."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


def test_the_line_for_another_shell_never_prints_a_password() -> None:
    """`jobstack local` prints an export line; a database URL's password must not be in it (nor in any output)."""
    from cli.local.command import share_line
    from cli.target import Target

    target = Target(endpoint_url="http://127.0.0.1:5000")
    plain = share_line(target, "sqlite:////tmp/x.sqlite3", "http://q", "http://d")
    assert plain.startswith("export DATABASE_URL=sqlite:////tmp/x.sqlite3 QUEUE_URL=http://q DLQ_URL=http://d ")
    assert "AWS_SECRET_ACCESS_KEY=local" in plain
    secret = share_line(target, "postgresql+psycopg://app:s3cret@db:5432/app", "http://q", "http://d")
    assert "s3cret" not in secret and "DATABASE_URL=" not in secret
    assert secret.endswith("# and your DATABASE_URL (it has a password)")
