"""Fine-grained assertions for every rule of the stack, per environment, so a snapshot update can never
hide a broken rule."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from stacks.jobs_construct import Jobs
from stacks.settings import load_settings
from tests.support.synth import cdk_context
from worker.secret_sources import PORT_VARIABLE

pytestmark = pytest.mark.infra


def resources(template: Template, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = dict(template.find_resources(kind))
    return found


def settings_for(env: str):
    return load_settings(cdk_context(), env)


def test_main_queue_is_encrypted_long_polled_and_redrives_to_the_dlq(env_template: tuple[str, Template]) -> None:
    env, template = env_template
    s = settings_for(env)
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": f"JobsStack-{env}-jobs",
            "SqsManagedSseEnabled": True,
            "ReceiveMessageWaitTimeSeconds": 20,
            "MessageRetentionPeriod": s.retention_days * 86400,
            "VisibilityTimeout": 6 * s.timeout_seconds + s.max_batching_window_seconds,
            "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": s.max_receive_count},
        },
    )
    queues = resources(template, "AWS::SQS::Queue")
    [dlq_id] = [k for k, q in queues.items() if q["Properties"]["QueueName"] == f"JobsStack-{env}-jobs-dlq"]
    [main] = [q for q in queues.values() if q["Properties"]["QueueName"] == f"JobsStack-{env}-jobs"]
    assert main["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}


def test_dlq_keeps_14_days_and_only_the_main_queue_may_redrive_into_it(env_template: tuple[str, Template]) -> None:
    env, template = env_template
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": f"JobsStack-{env}-jobs-dlq",
            "SqsManagedSseEnabled": True,
            "MessageRetentionPeriod": 14 * 86400,
            "RedriveAllowPolicy": {
                "redrivePermission": "byQueue",
                "sourceQueueArns": [
                    {"Fn::Join": ["", Match.array_with([Match.string_like_regexp(f":JobsStack-{env}-jobs$")])]}
                ],
            },
        },
    )


def test_both_queues_deny_requests_without_tls(env_template: tuple[str, Template]) -> None:
    _, template = env_template
    policies = resources(template, "AWS::SQS::QueuePolicy")
    assert len(policies) == 2
    for policy in policies.values():
        [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_functions_run_python_3_13_with_json_logs_and_retention(env_template: tuple[str, Template]) -> None:
    env, template = env_template
    s = settings_for(env)
    functions = resources(template, "AWS::Lambda::Function")
    assert {f["Properties"]["Handler"] for f in functions.values()} == {
        "worker.handler.handler",
        "worker.sweeper.handler",
    }
    for function in functions.values():
        props = function["Properties"]
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == [s.architecture]
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert "LogGroup" in props["LoggingConfig"]
    worker = next(f["Properties"] for f in functions.values() if f["Properties"]["Handler"] == "worker.handler.handler")
    assert worker["Timeout"] == s.timeout_seconds
    assert worker["MemorySize"] == s.memory_mb
    assert worker.get("ReservedConcurrentExecutions") == s.reserved_concurrency
    for log_group in resources(template, "AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] == s.log_retention_days
        assert log_group["DeletionPolicy"] == ("Retain" if s.removal_policy == "retain" else "Delete")


# What aws-cdk-lib sets for the Parameters and Secrets Lambda Extension: its configuration, no secret.
SECRETS_EXTENSION_VARIABLES = {
    "PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED", "PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE",
    "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL",
    "PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS", "SECRETS_MANAGER_TIMEOUT_MILLIS", "SECRETS_MANAGER_TTL",
    "SSM_PARAMETER_STORE_TIMEOUT_MILLIS", "SSM_PARAMETER_STORE_TTL",
}  # fmt: skip


def test_environment_variables_hold_no_secrets(env_template: tuple[str, Template]) -> None:
    _, template = env_template
    for function in resources(template, "AWS::Lambda::Function").values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert set(variables) == {
            "QUEUE_URL", "DLQ_URL", "DATABASE_SECRET_ARN", "LOG_LEVEL", "JOB_STALE_AFTER_SECONDS", "JOBSTACK_SERVICE",
            "JOB_FUNCTION_TIMEOUT_SECONDS", "JOB_MAX_RECEIVE_COUNT", "SWEEP_LOST_AFTER_SECONDS",
            "SWEEP_EXPIRED_AFTER_SECONDS", "PRUNE_COMPLETED_AFTER_DAYS", "PRUNE_FAILED_AFTER_DAYS",
            "DATABASE_SSLMODE", "DATABASE_SSLROOTCERT",
        } | SECRETS_EXTENSION_VARIABLES  # fmt: skip
        assert "DATABASE_URL" not in variables
        assert variables["DATABASE_SECRET_ARN"]["Ref"].startswith("JobsDatabaseSecret")  # a reference, never a value


def test_the_worker_is_told_the_limits_it_must_respect(env_template: tuple[str, Template]) -> None:
    """The worker requeues before SQS's redrive, refuses handlers that cannot fit the timeout, and the
    sweeper waits out the queue's own windows: each from the same settings as the queue and function."""
    env, template = env_template
    s = settings_for(env)
    for function in resources(template, "AWS::Lambda::Function").values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["JOB_MAX_RECEIVE_COUNT"] == str(s.max_receive_count)
        assert variables["JOB_FUNCTION_TIMEOUT_SECONDS"] == str(s.timeout_seconds)
        assert int(variables["SWEEP_LOST_AFTER_SECONDS"]) > s.visibility_timeout_seconds
        assert int(variables["SWEEP_EXPIRED_AFTER_SECONDS"]) > s.retention_days * 86_400
        assert variables["PRUNE_COMPLETED_AFTER_DAYS"] == str(s.completed_retention_days)
        assert variables["PRUNE_FAILED_AFTER_DAYS"] == str(s.failed_retention_days)


def test_event_source_reports_partial_batch_failures_with_the_settings(env_template: tuple[str, Template]) -> None:
    env, template = env_template
    s = settings_for(env)
    expected: dict[str, Any] = {"BatchSize": s.batch_size, "FunctionResponseTypes": ["ReportBatchItemFailures"]}
    if s.max_concurrency:
        expected["ScalingConfig"] = {"MaximumConcurrency": s.max_concurrency}
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", expected)
    template.resource_count_is("AWS::Lambda::EventSourceMapping", 1)


def test_sweeper_runs_on_a_schedule(env_template: tuple[str, Template]) -> None:
    env, template = env_template
    s = settings_for(env)
    unit = "minute" if s.sweep_interval_minutes == 1 else "minutes"
    template.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": f"rate({s.sweep_interval_minutes} {unit})", "State": "ENABLED"}
    )


def _statements(template: Template) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in resources(template, kind).values():
            out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def test_iam_is_least_privilege(env_template: tuple[str, Template]) -> None:
    _, template = env_template
    for role in resources(template, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"], "no managed policies on the functions' roles"
    for statement in _statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement
        resources_ = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert all(r != "*" for r in resources_), statement
        assert all(isinstance(r, dict) for r in resources_), (
            f"every resource is a reference to an exact ARN: {statement}"
        )


def test_each_role_gets_exactly_what_it_needs(env_template: tuple[str, Template]) -> None:
    _, template = env_template
    by_role: dict[str, set[str]] = {}
    for policy in resources(template, "AWS::IAM::Policy").values():
        role = policy["Properties"]["Roles"][0]["Ref"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            by_role.setdefault(role, set()).update(actions)
    worker = next(v for k, v in by_role.items() if k.startswith("JobsWorkerRole"))
    sweeper = next(v for k, v in by_role.items() if k.startswith("JobsSweeperRole"))
    assert worker == {
        "logs:CreateLogStream", "logs:PutLogEvents", "sqs:ReceiveMessage", "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage",
        "secretsmanager:GetSecretValue",
    }  # fmt: skip
    assert sweeper == {"logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "secretsmanager:GetSecretValue"}


def test_publisher_policy_only_sends_to_the_main_queue(env_template: tuple[str, Template]) -> None:
    _, template = env_template
    [policy] = resources(template, "AWS::IAM::ManagedPolicy").values()
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"]["Fn::GetAtt"][0].startswith("JobsQueue")


def test_alarms_notify_the_tls_only_topic(env_template: tuple[str, Template]) -> None:
    env, template = env_template
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    metrics = {a["Properties"].get("MetricName") for a in alarms.values()} | {  # metric math's metrics too
        q["MetricStat"]["Metric"]["MetricName"]
        for a in alarms.values()
        for q in a["Properties"].get("Metrics", [])
        if "MetricStat" in q
    }
    assert {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "Errors", "Throttles"} <= metrics
    for alarm in alarms.values():
        [action] = alarm["Properties"]["AlarmActions"]
        assert action["Ref"].startswith("JobsAlarmTopic")
    [topic_policy] = resources(template, "AWS::SNS::TopicPolicy").values()
    statement = topic_policy["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    s = settings_for(env)
    oldest = next(a for a in alarms.values() if a["Properties"].get("MetricName") == "ApproximateAgeOfOldestMessage")
    assert oldest["Properties"]["Threshold"] == s.alarm_oldest_message_seconds


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_alarm_can_deliver_to_its_topic(env_template: tuple[str, Template]) -> None:
    """Walks alarm action → topic → topic policy (→ key policy, if the topic were encrypted) and fails for any
    alarm CloudWatch could not deliver. A topic policy replaces SNS's default policy, so the topic must allow
    cloudwatch.amazonaws.com to publish, for this account and this alarm
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html)."""
    _, template = env_template
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    topics = resources(template, "AWS::SNS::Topic")
    policies = resources(template, "AWS::SNS::TopicPolicy")
    assert len(alarms) >= 7, "the walk must have alarms to walk"
    delivered = 0
    for alarm_id, alarm in alarms.items():
        actions = alarm["Properties"].get("AlarmActions", [])
        assert actions, f"{alarm_id} notifies nobody"
        for action in actions:
            topic_id = action["Ref"]
            assert topic_id in topics, f"{alarm_id} notifies {topic_id}, which is not a topic of this stack"
            assert "KmsMasterKeyId" not in topics[topic_id]["Properties"], (
                "an encrypted alarm topic needs a key policy that lets CloudWatch use the key: walk it here"
            )
            allowing = [
                st
                for policy in policies.values()
                if {"Ref": topic_id} in policy["Properties"]["Topics"]
                for st in policy["Properties"]["PolicyDocument"]["Statement"]
                if st["Effect"] == "Allow"
                and "cloudwatch.amazonaws.com" in _as_list(st.get("Principal", {}).get("Service", []))
                and "sns:Publish" in _as_list(st["Action"])
                and {"Fn::GetAtt": [alarm_id, "Arn"]} in _as_list(st["Condition"]["ArnEquals"]["aws:SourceArn"])
                and st["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
            ]
            assert allowing, f"{alarm_id} fires into {topic_id}, whose policy does not let CloudWatch publish"
            delivered += 1
    assert delivered == sum(len(a["Properties"]["AlarmActions"]) for a in alarms.values())


def test_outage_and_worker_error_alarms_watch_the_workers_own_metrics(env_template: tuple[str, Template]) -> None:
    env, template = env_template
    alarms = {
        a["Properties"].get("MetricName"): a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
    }
    for name in ("JobsUnavailable", "JobsErrored"):
        alarm = alarms[name]
        assert alarm["Namespace"] == "Jobstack"
        assert alarm["Dimensions"] == [{"Name": "Service", "Value": f"JobsStack-{env}"}]
    assert all("`jobstack " in a["AlarmDescription"] for a in alarms.values()), "every alarm says what to do"


def test_dashboard_shows_queue_function_and_per_type_job_metrics(env_template: tuple[str, Template]) -> None:
    env, template = env_template
    [dashboard] = resources(template, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for needle in (
        "ApproximateAgeOfOldestMessage",
        "Invocations",
        "ConcurrentExecutions",
        "JobsSucceeded",
        "JobsDeadLettered",
        "JobDuration",
        "JobQueueWait",  # by type (SEARCH) and for the pool, p50 and p99
        "Queue wait p99 by type",
    ):
        assert needle in body, needle
    assert f"JobsStack-{env}" in body


def test_outputs_name_what_operators_and_the_cli_need(env_template: tuple[str, Template]) -> None:
    _, template = env_template
    outputs = template.to_json()["Outputs"]
    for name in ("QueueUrl", "QueueArn", "DeadLetterQueueUrl", "WorkerFunctionName", "SweeperFunctionName",
                 "PublisherPolicyArn", "AlarmTopicArn", "DatabaseSecretArn", "EventSourceMappingId"):  # fmt: skip
        assert name in outputs, name


def test_removal_policy_follows_the_environment(env_template: tuple[str, Template]) -> None:
    env, template = env_template
    expected = "Retain" if env == "prod" else "Delete"
    for kind in ("AWS::SQS::Queue", "AWS::SecretsManager::Secret"):
        for resource in resources(template, kind).values():
            assert resource["DeletionPolicy"] == expected


def _stack(**overrides: Any) -> tuple[cdk.Stack, Jobs]:
    context = cdk_context(dev=overrides)
    app = cdk.App()
    stack = cdk.Stack(app, "Host")
    return stack, Jobs(stack, "Jobs", settings=load_settings(context, "dev"))


def test_an_existing_secret_is_used_instead_of_creating_one() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jobs/db-AbCdEf"
    stack, _ = _stack(database_secret_arn=arn)
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SecretsManager::Secret", 0)
    assert arn in json.dumps(template.to_json())


def test_bucket_grants_are_scoped_to_the_named_buckets() -> None:
    stack, _ = _stack(s3_read_buckets=["uploads-bucket"], s3_write_buckets=["exports-bucket"])
    statements = json.dumps(Template.from_stack(stack).to_json())
    assert ":s3:::uploads-bucket/*" in statements
    assert ":s3:::exports-bucket/*" in statements
    assert '"s3:*"' not in statements


def test_grant_publish_gives_send_message_on_the_queue_only() -> None:
    stack, jobs = _stack()
    web_app = iam.Role(stack, "WebApp", assumed_by=iam.AccountRootPrincipal())
    jobs.grant_publish(web_app)
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    [policy] = [p for p in policies.values() if p["Properties"]["Roles"][0]["Ref"].startswith("WebApp")]
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"]["Fn::GetAtt"][0].startswith("JobsQueue")


def test_log_group_outputs_name_the_groups_the_functions_write_to(env_template: tuple[str, Template]) -> None:
    """`jobstack logs` reads the WorkerLogGroupName output: it must be the group in the function's LoggingConfig,
    not `/aws/lambda/<name>`, which a function with its own log group never writes to."""
    _, template = env_template
    outputs = template.to_json()["Outputs"]
    functions = resources(template, "AWS::Lambda::Function").values()
    by_handler = {f["Properties"]["Handler"]: f["Properties"]["LoggingConfig"]["LogGroup"] for f in functions}
    assert outputs["WorkerLogGroupName"]["Value"] == by_handler["worker.handler.handler"]
    assert outputs["SweeperLogGroupName"]["Value"] == by_handler["worker.sweeper.handler"]
    groups = resources(template, "AWS::Logs::LogGroup")
    assert by_handler["worker.handler.handler"]["Ref"] in groups


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_prod_is_protected_from_deletion_and_the_others_are_not(
    cloud_assembly: cdk.cx_api.CloudAssembly, env: str
) -> None:
    assert cloud_assembly.get_stack_by_name(f"JobsStack-{env}").termination_protection is (env == "prod")


def test_the_sweeper_is_not_retried_by_lambda(env_template: tuple[str, Template]) -> None:
    """Its schedule invokes it asynchronously; Lambda would retry a failed sweep twice on top of the next run."""
    _, template = env_template
    [config] = resources(template, "AWS::Lambda::EventInvokeConfig").values()
    assert config["Properties"]["MaximumRetryAttempts"] == 0
    assert config["Properties"]["FunctionName"]["Ref"].startswith("JobsSweeper")


def test_the_runtimes_log_level_is_the_environments_not_debug(env_template: tuple[str, Template]) -> None:
    """Lambda's Python runtime sets the root logger to ApplicationLogLevel, so DEBUG there would let every
    library's DEBUG lines (botocore's whole GetSecretValue response) into CloudWatch Logs."""
    env, template = env_template
    expected = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARN", "ERROR": "ERROR"}[settings_for(env).log_level]
    levels = {
        f["Properties"]["LoggingConfig"]["ApplicationLogLevel"]
        for f in resources(template, "AWS::Lambda::Function").values()
    }
    assert levels == {expected}
    if env != "dev":
        assert expected != "DEBUG"


def test_workers_verify_the_databases_certificate_by_default(env_template: tuple[str, Template]) -> None:
    """libpq's default `prefer` allows a downgrade and checks nothing; the functions run outside a VPC by
    default, so the database is reached over the internet."""
    _, template = env_template
    for function in resources(template, "AWS::Lambda::Function").values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["DATABASE_SSLMODE"] == "verify-full"
        assert variables["DATABASE_SSLROOTCERT"] == "/etc/pki/tls/certs/ca-bundle.crt"


def test_a_secret_under_a_customer_key_can_be_decrypted_through_secrets_manager_only() -> None:
    key = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jobs/db-AbCdEf"
    stack, _ = _stack(database_secret_arn=secret, database_secret_kms_key_arn=key)
    decrypts = [st for st in _statements(Template.from_stack(stack)) if st["Action"] == "kms:Decrypt"]
    assert len(decrypts) == 2  # the worker's and the sweeper's
    for statement in decrypts:
        assert statement["Resource"] == key
        assert "kms:ViaService" in statement["Condition"]["StringEquals"]


def test_the_secrets_extension_is_a_layer_configured_for_the_worker_and_can_be_turned_off() -> None:
    """On (the default): AWS's layer for the function's architecture, its port where the worker looks
    (worker/secret_sources.py), a cache no older than the extension's 300 s maximum; no new IAM, since the
    extension calls GetSecretValue with the function's role. Off: neither layer nor variables."""
    stack, _ = _stack()
    template = Template.from_stack(stack)
    text = json.dumps(template.to_json())
    for function in resources(template, "AWS::Lambda::Function").values():
        props = function["Properties"]
        variables = props["Environment"]["Variables"]
        assert variables[PORT_VARIABLE] == "2773"
        assert variables["SECRETS_MANAGER_TTL"] == "300"
        assert variables["PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL"] == "warn"
        (layer,) = props["Layers"]
        assert layer["Fn::FindInMap"][0].startswith("Paramsandsecretslayer")
        assert layer["Fn::FindInMap"][2].endswith(props["Architectures"][0])
    assert "AWS-Parameters-and-Secrets-Lambda-Extension-Arm64" in text
    stack, _ = _stack(secrets_extension=False)
    template = Template.from_stack(stack)
    for function in resources(template, "AWS::Lambda::Function").values():
        assert "Layers" not in function["Properties"]
        assert PORT_VARIABLE not in function["Properties"]["Environment"]["Variables"]


def test_snapstart_publishes_the_worker_and_points_the_queue_at_its_live_alias() -> None:
    """SnapStart applies to published versions only: invoking $LATEST would start from INIT every time.
    https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html. Off (the default): no version, no alias."""
    stack, jobs = _stack(snapstart=True)
    template = Template.from_stack(stack)
    worker_id = stack.resolve(jobs.worker.node.default_child.logical_id)  # type: ignore[union-attr]
    functions = resources(template, "AWS::Lambda::Function")
    assert functions[worker_id]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert [f["Properties"].get("SnapStart") for k, f in functions.items() if k != worker_id] == [None]
    ((version_id, version),) = resources(template, "AWS::Lambda::Version").items()
    assert version["Properties"]["FunctionName"] == {"Ref": worker_id}
    ((alias_id, alias),) = resources(template, "AWS::Lambda::Alias").items()
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    (mapping,) = resources(template, "AWS::Lambda::EventSourceMapping").values()
    target = json.dumps(mapping["Properties"]["FunctionName"])  # the alias's qualified name: "<function>:live"
    assert alias_id in target and '":live"' in target

    stack, jobs = _stack()
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Lambda::Version", 0)
    template.resource_count_is("AWS::Lambda::Alias", 0)
    (mapping,) = resources(template, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionName"] == {"Ref": stack.resolve(jobs.worker.node.default_child.logical_id)}  # type: ignore[union-attr]
