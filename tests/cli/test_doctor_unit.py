"""`jobstack doctor` against an emulator, without a database: what only AWS can answer is marked as such and
does not fail the run."""

from __future__ import annotations

import pytest

from cli.target import Target
from tests.support.synth import settings_of

pytestmark = pytest.mark.unit


def test_against_an_emulator_what_only_aws_answers_is_marked_and_does_not_fail_the_run() -> None:
    """Reported: `jobstack doctor` by hand against the rehearsal exited 1 on the Lambda-quota and subscription
    lines, without the "(expected on an emulator)" the rehearsal added. A real failure still fails."""
    from cli.commands.doctor import Check, Doctor, report

    checks = [
        Check("queues", True, "match"),
        Check("Lambda concurrency", False, "cannot be read (NotImplemented)"),
        Check("alarms", False, "the topic has no confirmed subscription"),
    ]
    on_moto = Doctor(Target(endpoint_url="http://localhost:5000"), settings_of("dev"))._on_emulator(checks)
    text, code = report(on_moto)
    assert code == 0
    assert text.splitlines()[1] == (
        "○ Lambda concurrency: cannot be read (NotImplemented) (expected on an emulator: moto implements no Lambda "
        "account settings)"
    )
    assert report(Doctor(Target(), settings_of("dev"))._on_emulator(checks))[1] == 1, "on AWS they are failures"
    assert report([*on_moto, Check("database", False, "refused")])[1] == 1


def test_a_handler_naming_an_undefined_limiter_fails_the_rate_limits_check() -> None:
    from pydantic import BaseModel

    from cli.commands.doctor import Doctor
    from tests.support.worker_support import job_type_for_test

    class Empty(BaseModel):
        pass

    doctor = Doctor(Target(), settings_of("dev"))
    assert doctor.rate_limits().ok
    with job_type_for_test("charge", Empty, lambda ctx: None, max_attempts=3, rate_limit="stripe"):
        check = doctor.rate_limits()
    assert not check.ok and check.detail == (
        "handler for 'charge' takes its tokens from rate limit 'stripe', which the settings' rate_limits do not "
        "define (defined: none)"
    )


def test_before_deploy_names_a_region_without_the_otel_layer() -> None:
    """tracing "otel" in af-south-1 (the extension's region, not ADOT's): CloudFormation would create the queues
    and roles, then fail CreateFunction; the doctor says so before `cdk deploy` starts."""
    from dataclasses import replace

    from cli.commands.doctor import Doctor

    otel = replace(settings_of("dev"), tracing="otel")
    check = Doctor(Target(region="af-south-1"), otel).region()
    assert not check.ok and check.line().startswith(
        '✗ region: region af-south-1 has no arm64 ADOT Python layer 1.29.0 (tracing "otel"); set "tracing": "xray"'
    )
    assert Doctor(Target(region="eu-west-1"), otel).region().ok
    bound = replace(otel, account="123456789012", region="eu-west-1")
    assert Doctor(Target(region="af-south-1"), bound).region().ok, "a bound environment deploys to its own region"
    plain = replace(otel, tracing="off", secrets_extension=False)
    assert Doctor(Target(region="il-central-1"), plain).region().line() == (
        "✓ region: il-central-1: the settings attach no regional layer"
    )
