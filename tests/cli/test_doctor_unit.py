"""`jobs doctor` against an emulator, without a database: what only AWS can answer is marked as such and
does not fail the run."""

from __future__ import annotations

import pytest

from cli.target import Target
from tests.support.synth import settings_of

pytestmark = pytest.mark.unit


def test_against_an_emulator_what_only_aws_answers_is_marked_and_does_not_fail_the_run() -> None:
    """Reported: `jobs doctor` by hand against the rehearsal exited 1 on the Lambda-quota and subscription
    lines, without the "(expected on an emulator)" the rehearsal added. A real failure still fails."""
    from cli.doctor import Check, Doctor, report

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

    from cli.doctor import Doctor
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
