"""The fair-queue simulation models the rule SQS documents ("How Amazon SQS fair queues work"): a tenant is a
noisy neighbour with more than 10% of in-flight messages and at least 30 of its own, and quiet tenants' messages
then go first. Checked on the rule's edges, and on what the rule implies for a backlog at low and high
concurrency, so a change to the model that contradicts the documented rule fails here."""

from __future__ import annotations

import pytest

from bench.fair_queue_simulation import Result, is_noisy, simulate

pytestmark = pytest.mark.unit


def _backlog_of_600(*, consumers: int, fair: bool, gate: int | None, park: bool = True) -> Result:
    """Tenant A's 600 jobs, then 4 quiet tenants' 5 each."""
    return simulate(consumers=consumers, backlog=600, quiet_tenants=4, quiet_jobs=5, fair=fair, gate=gate, park=park)


def test_the_noisy_neighbour_rule_on_its_edges() -> None:
    assert is_noisy(30, 100)  # 30% of in flight, 30 of its own
    assert not is_noisy(29, 100), "fewer than 30 in flight is never noisy, whatever its share"
    assert not is_noisy(29, 29)
    assert not is_noisy(30, 300), "exactly 10% is not more than 10%"
    assert is_noisy(31, 300)


def test_a_fair_queue_helps_only_once_a_tenant_can_hold_30_messages_in_flight() -> None:
    plain_low = _backlog_of_600(consumers=4, fair=False, gate=None)
    fair_low = _backlog_of_600(consumers=4, fair=True, gate=None)
    assert fair_low.quiet_waits == plain_low.quiet_waits, "4 consumers: A never reaches 30 in flight"
    plain_high = _backlog_of_600(consumers=100, fair=False, gate=None)
    fair_high = _backlog_of_600(consumers=100, fair=True, gate=None)
    assert plain_high.wait(100) >= 5.0, "behind 600 one-second jobs on 100 consumers"
    assert fair_high.wait(100) <= 1.1, "quiet messages go first once A is noisy"
    assert fair_high.receives == plain_high.receives == 600 + 20, "reordered, nothing dropped or received twice"


def test_the_gate_lets_quiet_tenants_start_at_any_concurrency_and_parking_receives_each_job_twice_at_most() -> None:
    parked = _backlog_of_600(consumers=4, fair=False, gate=2, park=True)
    returned = _backlog_of_600(consumers=4, fair=False, gate=2, park=False)
    ungated = _backlog_of_600(consumers=4, fair=False, gate=None)
    assert parked.backlog_done_by_then < 600 / 2, "every quiet job started before half of A's backlog was done"
    assert ungated.backlog_done_by_then == 600
    assert parked.receives <= 2 * (600 + 20), "a parked job is received once more, when released"
    assert returned.receives > parked.receives, "returned, A's turned-away messages are received again and again"
    assert parked.backlog_done < returned.backlog_done, "parked, A's backlog drains at its limit without gaps"
