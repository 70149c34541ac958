"""A sentence a benchmark prints with a number computes that number from its run. Reported: bench.table_scale
said "2.8 million rows: ten times what 1,000 completed jobs/s leave behind" whatever it measured (a quiet
run measured 22,909 rows/s: 1.4 million rows a run, 4.6 times)."""

from __future__ import annotations

import pytest

from bench.table_scale import pruning_capacity

pytestmark = pytest.mark.unit


def test_the_pruning_sentence_follows_the_measured_rate() -> None:
    assert pruning_capacity(22_909).endswith(
        "deletes about 1.4 million rows: 4.6 times the 300,000 that 1,000 completed jobs/s leave behind in 5 minutes."
    )
    assert "2.8 million rows: 9.3 times" in pruning_capacity(46_497)
