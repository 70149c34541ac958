"""The token bucket in the database, on both databases: `burst` tokens at once, then one per 1/per_second,
and how long until the next."""

from __future__ import annotations

from datetime import timedelta

import pytest

from db import DB, utcnow
from db.rate_limits import take_token

pytestmark = pytest.mark.integration


def test_a_burst_then_the_rate(any_db: DB) -> None:
    now = utcnow()
    taken = [take_token(any_db, "api", per_second=10, burst=3, now=now).taken for _ in range(4)]
    assert taken == [True, True, True, False]
    verdict = take_token(any_db, "api", per_second=10, burst=3, now=now)
    assert not verdict.taken and verdict.wait_seconds == pytest.approx(0.1, abs=0.01)
    assert take_token(any_db, "api", per_second=10, burst=3, now=now + timedelta(milliseconds=110)).taken
    assert not take_token(any_db, "api", per_second=10, burst=3, now=now + timedelta(milliseconds=120)).taken
    later = now + timedelta(seconds=60)  # refilled to the burst, never beyond
    assert [take_token(any_db, "api", per_second=10, burst=3, now=later).taken for _ in range(4)] == [
        True, True, True, False,
    ]  # fmt: skip
    assert take_token(any_db, "other", per_second=1, burst=1, now=now).taken  # limiters are separate
