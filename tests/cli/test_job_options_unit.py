"""`jobstack publish` has one flag for every job option (jobstack.JobOptions), and gives publish what it read."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from cli.job_options import FLAGS, options_of
from cli.parser import build_parser
from db import JobOptions

pytestmark = pytest.mark.unit


def test_every_job_option_is_one_flag() -> None:
    assert set(FLAGS) == set(JobOptions.__annotations__)
    assert len({flag.flag for flag in FLAGS.values()}) == len(FLAGS)


def test_the_flags_read_back_as_the_options_given_and_only_those() -> None:
    a, b = uuid4(), uuid4()
    argv = [
        "publish",
        "t",
        "--in",
        "90m",
        "--after",
        str(a),
        "--after",
        str(b),
        "--unique-key",
        "k",
        "--max-attempts",
        "3",
    ]
    options = options_of(build_parser().parse_args(argv))
    assert options == {"delay": timedelta(minutes=90), "after": [a, b], "unique_key": "k", "max_attempts": 3}
    assert options_of(build_parser().parse_args(["publish", "t"])) == {}


def test_when_to_run_is_one_flag_at_most() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["publish", "t", "--delay", "5", "--in", "1h"])
