"""Periodic jobs from cdk.json's `schedules`: validated at synth with one-line errors, each an EventBridge
Scheduler schedule (time zone, no flexible window) invoking the publishing entry point through a role that
may invoke that function only; an environment without schedules has none of it; cdk-nag and cfn-lint pass.

AWS's rules the template is held to (moto creates no Scheduler resources): the target input's
`<aws.scheduler.scheduled-time>` context attribute
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html), an IANA
ScheduleExpressionTimezone and a six-field cron with one `?`
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html), and the trust policy's
aws:SourceAccount against the confused deputy
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/cross-service-confused-deputy-prevention.html).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stacks.schedules import parse_schedules
from stacks.settings import SettingsError, load_settings
from tests.support.synth import assert_checks_pass, cdk_context, of_type, stack_template, synth_app
from worker.contract import Env

pytestmark = pytest.mark.infra
NIGHTLY = {"cron": "0 3 * * ? *", "timezone": "Europe/Paris", "type": "test-echo", "payload": {"report": "daily"}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"cron": "0 3 * * *", "type": "t"}, "cron needs 6 fields"),
        ({"cron": "0 3 * * * *", "type": "t"}, "'?' in exactly one of day-of-month and day-of-week"),
        ({"cron": "0 25 * * ? *", "type": "t"}, "cron hours '25' is outside 0-23"),
        ({"rate": "5 minute", "type": "t"}, "rate must be like '1 hour' or '15 minutes'"),
        ({"cron": "0 3 * * ? *", "rate": "1 hour", "type": "t"}, "needs exactly one of cron and rate"),
        ({"cron": "0 3 * * ? *", "timezone": "Paris", "type": "t"}, "'Paris' is not an IANA time zone"),
        ({"cron": "0 3 * * ? *"}, "needs the job type to publish"),
    ],
)
def test_a_bad_schedule_is_one_line_naming_it(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        load_settings(cdk_context(alone=True, dev={"schedules": {"nightly": spec}}), "dev")
    assert "schedule 'nightly'" in str(caught.value) and "\n" not in str(caught.value)


def test_next_fire_times_follow_the_time_zone() -> None:
    [nightly] = parse_schedules("dev", {"nightly": NIGHTLY})
    fires = nightly.next_fires(datetime(2026, 11, 28, 1, 0, tzinfo=UTC), count=2)
    assert [f.isoformat() for f in fires] == ["2026-11-28T03:00:00+01:00", "2026-11-29T03:00:00+01:00"]
    [weekdays] = parse_schedules("dev", {"w": {"cron": "30 9 ? * MON-FRI *", "type": "t"}})
    assert weekdays.next_fires(datetime(2026, 11, 28, 12, 0, tzinfo=UTC), count=1)[0].day == 30  # Saturday → Monday


def test_each_schedule_is_a_scheduler_schedule_with_a_least_privilege_role(tmp_path: Path) -> None:
    context = cdk_context(
        dev={"schedules": {"nightly-report": NIGHTLY, "hourly": {"rate": "1 hour", "type": "test-echo"}}}
    )
    assembly = synth_app(tmp_path / "out", context)
    assert_checks_pass(assembly, ("dev",), tmp_path)
    dev = stack_template(assembly, "dev")
    schedules = {
        s["Properties"]["Description"]: s["Properties"] for s in of_type(dev, "AWS::Scheduler::Schedule").values()
    }
    nightly = schedules["jobstack schedule nightly-report: publishes a test-echo job"]
    assert nightly["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert nightly["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert nightly["FlexibleTimeWindow"] == {"Mode": "OFF"}
    sent = json.loads(nightly["Target"]["Input"])
    assert sent == {"schedule": "nightly-report", "type": "test-echo", "payload": {"report": "daily"},
                    "scheduledTime": "<aws.scheduler.scheduled-time>"}  # fmt: skip
    functions = of_type(dev, "AWS::Lambda::Function")
    [(scheduled_id, _)] = [
        (k, f) for k, f in functions.items() if f["Properties"]["Handler"] == "worker.scheduled.handler"
    ]
    assert nightly["Target"]["Arn"] == {"Fn::GetAtt": [scheduled_id, "Arn"]}
    roles = of_type(dev, "AWS::IAM::Role")
    role_id = nightly["Target"]["RoleArn"]["Fn::GetAtt"][0]
    trust = roles[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"} and "aws:SourceAccount" in json.dumps(trust)
    policies = [p for p in of_type(dev, "AWS::IAM::Policy").values() if p["Properties"]["Roles"] == [{"Ref": role_id}]]
    invoke, send = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert send["Action"] == "sqs:SendMessage"  # its dead letters (the next test)
    statement = invoke
    assert statement["Action"] == "lambda:InvokeFunction"
    assert json.dumps(statement["Resource"]).count(scheduled_id) >= 1 and "*" not in json.dumps(statement["Resource"])


def test_an_environment_without_schedules_has_none_of_it(tmp_path: Path) -> None:
    dev = stack_template(synth_app(tmp_path / "out", cdk_context(alone=True, dev={})), "dev")
    assert of_type(dev, "AWS::Scheduler::Schedule") == {}
    assert all(
        f["Properties"]["Handler"] != "worker.scheduled.handler" for f in of_type(dev, "AWS::Lambda::Function").values()
    )


def test_jobs_schedules_lists_each_with_its_next_fire_times(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from cli.commands import schedules as settings_commands

    context = cdk_context(alone=True, dev={"schedules": {"nightly-report": NIGHTLY}})
    monkeypatch.setattr(settings_commands, "stack_settings", lambda env: load_settings(context, env))
    args = argparse.Namespace(env="dev", json=True)
    assert settings_commands.cmd_schedules(args, now=datetime(2026, 11, 28, 1, 0, tzinfo=UTC)) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["name"] == "nightly-report" and row["next"][0] == "2026-11-28T03:00:00+01:00"


def test_doctor_names_schedule_types_the_worker_does_not_register() -> None:
    from cli.commands.doctor import Doctor
    from cli.target import Target

    spec = {"known": {"rate": "1 hour", "type": "test-echo"}, "typo": {"rate": "1 hour", "type": "tset-echo"}}
    settings = load_settings(cdk_context(alone=True, dev={"schedules": spec}), "dev")
    check = Doctor(Target(), settings).schedule_types()
    assert not check.ok and check.detail == "job type(s) tset-echo are not registered by this worker"
    fine = load_settings(cdk_context(alone=True, dev={"schedules": {"known": spec["known"]}}), "dev")
    assert Doctor(Target(), fine).schedule_types().ok


def test_a_fire_that_fails_is_retried_then_kept_alarmed_and_replayed(tmp_path: Path) -> None:
    """Scheduler invokes the function asynchronously, so its RetryPolicy covers only the invoke call
    (https://docs.aws.amazon.com/lambda/latest/dg/with-eventbridge-scheduler.html); the function's own errors
    are Lambda's asynchronous retries, bounded by an EventInvokeConfig, after which the event goes to its
    on-failure destination (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html,
    .../invocation-async-retain-records.html). Scheduler's dead-letter queue takes what it could not invoke
    (https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html; its execution role
    sends there). Both go to one queue, alarmed, that the sweeper reads; with a KMS key, every sender may use it."""
    context = cdk_context(alone=True, dev={"schedules": {"nightly-report": NIGHTLY}, "queue_encryption": "kms"})
    assembly = synth_app(tmp_path / "out", context)
    assert_checks_pass(assembly, ("dev",), tmp_path)
    dev = stack_template(assembly, "dev")
    functions = of_type(dev, "AWS::Lambda::Function")
    by_handler = {f["Properties"]["Handler"]: k for k, f in functions.items()}
    scheduled_id, sweeper_id = by_handler["worker.scheduled.handler"], by_handler["worker.sweeper.handler"]
    [failures_id] = [k for k in of_type(dev, "AWS::SQS::Queue") if k.startswith("JobsScheduleFailures")]
    failures_arn = {"Fn::GetAtt": [failures_id, "Arn"]}

    [config] = [c["Properties"] for c in of_type(dev, "AWS::Lambda::EventInvokeConfig").values()
                if c["Properties"]["FunctionName"] == {"Ref": scheduled_id}]  # fmt: skip
    assert config["MaximumRetryAttempts"] == 2 and config["MaximumEventAgeInSeconds"] == 3600
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == failures_arn
    [schedule] = of_type(dev, "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["Target"]["DeadLetterConfig"] == {"Arn": failures_arn}

    def allowed(role_id: str) -> set[str]:
        policies = [
            p for p in of_type(dev, "AWS::IAM::Policy").values() if p["Properties"]["Roles"] == [{"Ref": role_id}]
        ]
        statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
        return {
            action
            for s in statements
            for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            if failures_arn in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        }

    role_of = {k: f["Properties"]["Role"]["Fn::GetAtt"][0] for k, f in functions.items()}
    assert allowed(role_of[scheduled_id]) == {"sqs:SendMessage"}, "Lambda sends the record with the function's role"
    scheduler_role = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
    assert allowed(scheduler_role) == {"sqs:SendMessage"}, "Scheduler sends its dead letters with its role"
    assert allowed(role_of[sweeper_id]) == {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}
    key_users = [p for p in of_type(dev, "AWS::IAM::Policy").values() if "kms:GenerateDataKey" in json.dumps(p)]
    assert {json.dumps(p["Properties"]["Roles"]) for p in key_users} >= {
        json.dumps([{"Ref": r}]) for r in (role_of[scheduled_id], scheduler_role)
    }
    env = functions[sweeper_id]["Properties"]["Environment"]["Variables"]
    assert env[Env.SCHEDULE_FAILURES_URL] == {"Ref": failures_id}

    alarms = of_type(dev, "AWS::CloudWatch::Alarm")
    errors = next(a["Properties"] for k, a in alarms.items() if k.startswith("JobsScheduledErrors"))
    assert errors["MetricName"] == "Errors" and errors["Dimensions"][0]["Value"] == {"Ref": scheduled_id}
    arrivals_id = next(k for k in alarms if k.startswith("JobsScheduleFailureArrivals"))
    assert "NumberOfMessagesSent" in json.dumps(alarms[arrivals_id]) and failures_id in json.dumps(alarms[arrivals_id])
    [topic_policy] = of_type(dev, "AWS::SNS::TopicPolicy").values()
    allow = json.dumps(topic_policy["Properties"]["PolicyDocument"])
    for alarm_id in (arrivals_id, next(k for k in alarms if k.startswith("JobsScheduledErrors"))):
        assert json.dumps({"Fn::GetAtt": [alarm_id, "Arn"]}) in allow, f"{alarm_id} can reach the topic"
    assert "ScheduleFailuresQueueUrl" in dev["Outputs"] and "ScheduledLogGroupName" in dev["Outputs"]


def test_the_sweepers_environment_names_the_failure_queue_the_worker_reads(tmp_path: Path) -> None:
    """The contract, fed from one side to the other: the sweeper's variables as the stack writes them
    (references resolved to URLs), read by the worker's own loader."""
    from worker.config import load_config

    dev = stack_template(synth_app(tmp_path / "out", cdk_context(alone=True, dev={"schedules": {"n": NIGHTLY}})), "dev")
    [sweeper] = [f for f in of_type(dev, "AWS::Lambda::Function").values()
                 if f["Properties"]["Handler"] == "worker.sweeper.handler"]  # fmt: skip
    variables = sweeper["Properties"]["Environment"]["Variables"]
    resolved = {
        name: value if isinstance(value, str) else f"https://sqs.us-east-1.amazonaws.com/123456789012/{name}"
        for name, value in variables.items()
    }
    resolved["DATABASE_SECRET_ARN"] = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"
    del resolved["DATABASE_SSLROOTCERT"]  # Lambda's CA bundle path; not on this machine
    config = load_config(resolved)
    assert config.schedule_failures_url == resolved[Env.SCHEDULE_FAILURES_URL]
    assert config.schedule_failures_url.endswith(f"/{Env.SCHEDULE_FAILURES_URL}")
