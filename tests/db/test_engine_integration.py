"""An unreachable database (a real refused connection) is one redacted line."""

from __future__ import annotations

import pytest

from db import DatabaseUnavailable, create_db, get_job

pytestmark = pytest.mark.integration


def test_unreachable_database_is_one_redacted_line() -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    db = create_db("postgresql://app:hunter2@127.0.0.1:1/postgres", connect_timeout=2)
    with pytest.raises(DatabaseUnavailable) as caught:
        get_job(db, __import__("uuid").uuid4())
    message = str(caught.value)
    assert message.startswith("database unavailable:")
    assert "hunter2" not in message
    assert "\n" not in message
