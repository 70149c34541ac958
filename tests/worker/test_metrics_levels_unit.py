"""Settings' log levels and Lambda's: every level the worker accepts has a Lambda level, and the EMF level
follows Lambda's documented filter rule."""

from __future__ import annotations

import pytest

from tests.support.lambda_logs import kept, level_of
from worker.config import LOG_LEVELS
from worker.contract import LAMBDA_LOG_LEVELS

pytestmark = pytest.mark.unit


def test_every_level_the_worker_accepts_has_a_lambda_level() -> None:
    """The stack sets ApplicationLogLevel from this map (stacks/functions.py), the worker prints its metrics
    at it: a level the worker accepts but the map lacks would fail synth or print metrics at INFO."""
    assert set(LAMBDA_LOG_LEVELS) == set(LOG_LEVELS)


def test_the_filter_follows_the_documented_rule() -> None:
    """The judge itself: AWS's example line is DEBUG; no level, a bad level or no timestamp is INFO."""
    example = '{"level": "debug", "msg": "my debug log", "timestamp": "2024-11-02T16:51:31.587199Z"}'
    assert level_of(example) == "DEBUG"
    assert level_of('{"msg": "x", "timestamp": "2024-11-02T16:51:31Z"}') == "INFO"
    assert level_of('{"level": "loud", "timestamp": "2024-11-02T16:51:31Z"}') == "INFO"
    assert level_of('{"level": "ERROR"}') == "INFO"
    assert level_of("plain text") == "INFO"
    assert kept([example, '{"level": "WARN", "timestamp": "2024-11-02T16:51:31+00:00"}'], "WARN") == [
        '{"level": "WARN", "timestamp": "2024-11-02T16:51:31+00:00"}'
    ]
