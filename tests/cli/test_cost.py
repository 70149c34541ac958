"""`jobstack cost`: the estimate's arithmetic, that it follows the stack's settings, and its bad-input lines."""

from __future__ import annotations

import json

import pytest

from cli.commands import cost
from cli.main import main
from cli.target import stack_settings

pytestmark = pytest.mark.unit


def test_one_estimate_worked_by_hand() -> None:
    design = cost.Design("d", batch_size=10, memory_mb=1024, architecture="x86_64", round_trips_per_job=2)
    e = cost.estimate(design, jobs_per_month=1_000_000, avg_ms=20.0, db_rtt_ms=1.5)
    # 100,000 invocations of 10 x (20 + 2 x 1.5) + 1 = 231 ms at 1 GB: 23,100 GB-s.
    assert e.invocations == 100_000
    assert e.billed_ms_per_invocation == 231
    assert e.gb_seconds == pytest.approx(23_100)
    assert e.lambda_duration_usd == pytest.approx(23_100 * 0.0000166667)
    assert e.lambda_requests_usd == pytest.approx(0.02)
    # a send per job, then a receive and a delete per invocation
    assert e.sqs_requests == 1_200_000
    assert e.sqs_usd == pytest.approx(0.48)
    assert e.total_usd == pytest.approx(e.lambda_duration_usd + 0.02 + 0.48)


def test_billed_time_rounds_up_to_whole_milliseconds_and_partial_batches_count() -> None:
    design = cost.Design("d", batch_size=10, memory_mb=128, architecture="arm64", round_trips_per_job=2)
    e = cost.estimate(design, jobs_per_month=11, avg_ms=0.01, db_rtt_ms=0.0)
    assert e.invocations == 2
    assert e.billed_ms_per_invocation == 2  # 10 x 0.01 + 1 = 1.1 ms, billed as 2


def test_the_rows_follow_the_environment_settings() -> None:
    prod = stack_settings("prod")
    ours, ours_at_1, seeds = cost.designs(prod)
    assert (ours.batch_size, ours.memory_mb, ours.architecture) == (prod.batch_size, prod.memory_mb, prod.architecture)
    assert ours_at_1.batch_size == seeds.batch_size == 1
    assert seeds.round_trips_per_job == 9 and ours_at_1.round_trips_per_job == 2
    assert ours.round_trips_per_job == pytest.approx(1.1)  # 11 statements for a batch of 10
    assert ours_at_1.memory_mb == prod.memory_mb
    # The seeds' runbook as it deploys itself: --memory-size 256, no --architectures (x86_64), --batch-size 1.
    assert (seeds.batch_size, seeds.memory_mb, seeds.architecture) == (1, 256, "x86_64")


def test_batching_saves_requests_and_invocation_overhead() -> None:
    ours, ours_at_1, seeds = (
        cost.estimate(d, jobs_per_month=5_000_000, avg_ms=10.0, db_rtt_ms=1.0)
        for d in cost.designs(stack_settings("dev"))
    )
    assert ours_at_1.invocations == ours.invocations * ours.design.batch_size
    assert ours.total_usd < ours_at_1.total_usd and ours.total_usd < seeds.total_usd


def test_the_command_prints_the_three_rows_and_its_assumptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--jobs-per-month", "2000000", "--avg-ms", "25", "--env", "staging"]) == 0
    out = capsys.readouterr().out
    assert "JobsStack-staging (batch 10)" in out and "JobsStack-staging at batch 1" in out
    assert "seeds' runbook (batch 1, 256 MB, x86_64)" in out
    assert "2,000,000 jobs/month, 25 ms handler time each" in out


def test_json_output_matches_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--jobs-per-month", "300", "--avg-ms", "4", "--db-rtt-ms", "0.5", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = [
        cost.estimate(d, jobs_per_month=300, avg_ms=4, db_rtt_ms=0.5) for d in cost.designs(stack_settings("dev"))
    ]
    assert [r["invocations"] for r in rows] == [e.invocations for e in expected]
    assert [r["total_usd"] for r in rows] == pytest.approx([e.total_usd for e in expected])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--jobs-per-month", "0", "--avg-ms", "5"], "--jobs-per-month: 0 must be at least 1"),
        (["--jobs-per-month", "ten", "--avg-ms", "5"], "'ten' is not a whole number"),
        (["--jobs-per-month", "10", "--avg-ms", "-1"], "-1 must be zero or more milliseconds"),
        (["--jobs-per-month", "10", "--avg-ms", "nan"], "nan must be zero or more milliseconds"),
        (["--jobs-per-month", "10"], "the following arguments are required: --avg-ms"),
    ],
)
def test_bad_numbers_are_one_usage_line(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["cost", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_unknown_environment_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--jobs-per-month", "10", "--avg-ms", "1", "--env", "qa"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        "error: invalid settings for environment 'qa': not in cdk.json context jobstack.environments "
        "(dev, staging, prod)"
    ]


def test_a_pools_settings_price_its_jobs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`--pool`: that pool's batch size and memory (pools from $JOBSTACK_OVERRIDES, as a deploy's -c)."""
    pools = {"video": {"types": ["v"], "memory_mb": 3008, "batch_size": 1, "timeout_seconds": 900}}
    monkeypatch.setenv("JOBSTACK_OVERRIDES", json.dumps({"dev": {"pools": pools}}))
    args = ["cost", "--jobs-per-month", "1000", "--avg-ms", "60000", "--json"]
    assert main([*args, "--pool", "video"]) == 0
    video = json.loads(capsys.readouterr().out)[0]
    assert main(args) == 0
    default = json.loads(capsys.readouterr().out)[0]
    assert video["name"] == "JobsStack-dev pool video (batch 1)" and video["invocations"] == 1000
    assert video["lambda_duration_usd"] == pytest.approx(default["lambda_duration_usd"] * 3008 / 512, rel=0.01)
    assert main([*args, "--pool", "nope"]) == 2
    assert "JobsStack-dev has no pool 'nope' (its pools: default, video)" in capsys.readouterr().err
