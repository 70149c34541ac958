"""Worker pools in the template: settings refused at synth with one line naming the pool, a queue, DLQ,
worker, event source mapping, alarms and dashboard row per pool with IAM per resource, FIFO pools as SQS and
Lambda require them, the default pool's logical ids unchanged, cdk-nag and cfn-lint clean, and the template
created by moto's CloudFormation with outputs a publisher can route by.

AWS's rules the FIFO template is held to (moto checks none of them): a FIFO queue's dead-letter queue must
be FIFO too (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html);
high throughput is FifoThroughputLimit perMessageGroupId with DeduplicationScope messageGroup, and
perMessageGroupId is allowed only with messageGroup
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html); Lambda
takes at most 10 records per batch from a FIFO queue and no batching window
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from db import Routes
from stacks.jobs_construct import Jobs
from stacks.settings import SettingsError, load_settings
from tests.support.synth import (
    VIDEO_AND_LEDGER_POOLS,
    assert_checks_pass,
    cdk_context,
    of_type,
    stack_template,
    synth_app,
)

pytestmark = [pytest.mark.infra, pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")]
POOLS = VIDEO_AND_LEDGER_POOLS


@pytest.mark.parametrize(
    ("pools", "message"),
    [
        ({"a": {"types": ["t"]}, "b": {"types": ["t"]}}, "pool 'b': job type 't' is also in pool 'a'"),
        ({"video": {"timeout_seconds": 900}}, "pool 'video' has no types"),
        ({"video": {"types": ["t"], "account": "1"}}, "pool 'video': unknown key 'account'"),
        ({"Video": {"types": ["t"]}}, "pool name 'Video' must be 1-24 lowercase letters"),
        ({"video": {"types": ["t"], "timeout_seconds": 1000}},
         "pool 'video': timeout_seconds must be between 1 and 900"),
        ({"l": {"types": ["t"], "fifo": True, "batch_size": 20, "max_batching_window_seconds": 1}},
         "pool 'l': batch_size 20 is over 10, Lambda's maximum on FIFO queues"),
        # Reported: without a window, the standard-queue rule answered first ("needs max_batching_window_seconds"),
        # and the user who added one was then refused by the FIFO rule. The FIFO rule speaks first.
        ({"l": {"types": ["t"], "fifo": True, "batch_size": 20}},
         "pool 'l': batch_size 20 is over 10, Lambda's maximum on FIFO queues"),
        ({"l": {"types": ["t"], "fifo": True, "max_batching_window_seconds": 5}},
         "pool 'l': max_batching_window_seconds must be 0"),
        ({"l": {"types": ["t"], "fifo": True, "deduplication_scope": "queue"}},
         "fifo_throughput_limit perMessageGroupId needs deduplication_scope messageGroup"),
        ({"l": {"types": ["t"], "deduplication_scope": "queue"}}, "pool 'l': deduplication_scope needs fifo: true"),
        ({"l": {"types": ["t bad"]}}, "'t bad' is not a job type name"),
        ({"l": {"types": ["t"], "fifo": "yes"}}, "pool 'l': fifo must be true or false"),
        ({"a-1b": {"types": ["t"]}, "a1b": {"types": ["u"]}}, "pool 'a1b': its outputs would clash"),
        ({f"p{n}": {"types": [f"t{n}"]} for n in range(30)}, "pools has 31 pools with the default: at most 30"),
    ],
)  # fmt: skip
def test_bad_pools_are_one_line_naming_the_pool(pools: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(cdk_context(alone=True, dev={"pools": pools}), "dev")
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith("invalid settings for environment 'dev'")


def test_a_schedule_of_a_fifo_pools_type_is_refused() -> None:
    schedules = {"nightly": {"cron": "0 3 * * ? *", "type": "ledger.post"}}
    with pytest.raises(SettingsError, match=r"schedules\.nightly publishes 'ledger\.post', which runs in FIFO pool"):
        load_settings(cdk_context(alone=True, dev={"pools": POOLS, "schedules": schedules}), "dev")


def test_pools_inherit_the_environments_settings_and_derive_their_own() -> None:
    settings = load_settings(cdk_context(alone=True, dev={"pools": POOLS}), "dev")
    default, video, ledger = settings.all_pools
    assert (default.name, default.settings.timeout_seconds, default.settings.memory_mb) == ("default", 60, 512)
    assert video.settings.visibility_timeout_seconds == 6 * 900
    assert video.settings.reserved_concurrency == 6 and video.settings.log_level == settings.log_level
    assert (
        ledger.queue_name == "JobsStack-dev-ledger-jobs.fifo"
        and ledger.dlq_name == "JobsStack-dev-ledger-jobs-dlq.fifo"
    )
    assert settings.pool_for_type("ledger.post") is ledger and settings.pool_for_type("anything") is default


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk.cx_api.CloudAssembly, dict[str, Any]]:
    assembly = synth_app(tmp_path_factory.mktemp("pools"), cdk_context(alone=True, dev={"pools": POOLS}))
    return assembly, stack_template(assembly, "dev")


def test_two_pools_and_a_fifo_pool_pass_cdk_nag_and_cfn_lint(
    pooled: tuple[cdk.cx_api.CloudAssembly, dict[str, Any]], tmp_path: Path
) -> None:
    assert_checks_pass(pooled[0], ("dev",), tmp_path)


def test_each_pool_has_its_queues_worker_and_mapping_and_the_default_keeps_its_ids(
    pooled: tuple[cdk.cx_api.CloudAssembly, dict[str, Any]], templates: dict[str, dict[str, Any]]
) -> None:
    template = pooled[1]
    queues = {
        q["Properties"]["QueueName"]: (k, q["Properties"]) for k, q in of_type(template, "AWS::SQS::Queue").items()
    }
    assert sorted(queues) == sorted(
        ["JobsStack-dev-jobs", "JobsStack-dev-jobs-dlq", "JobsStack-dev-video-jobs", "JobsStack-dev-video-jobs-dlq",
         "JobsStack-dev-ledger-jobs.fifo", "JobsStack-dev-ledger-jobs-dlq.fifo"]
    )  # fmt: skip
    single = {q["Properties"]["QueueName"]: k for k, q in of_type(templates["dev"], "AWS::SQS::Queue").items()}
    assert {name: queues[name][0] for name in single} == single, "the default pool's queues keep their logical ids"
    video = queues["JobsStack-dev-video-jobs"][1]
    assert video["VisibilityTimeout"] == 6 * 900
    assert video["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": [queues["JobsStack-dev-video-jobs-dlq"][0], "Arn"]
    }
    for name in ("JobsStack-dev-ledger-jobs.fifo", "JobsStack-dev-ledger-jobs-dlq.fifo"):
        fifo = queues[name][1]
        assert fifo["FifoQueue"] is True and fifo["ContentBasedDeduplication"] is False
        assert (fifo["FifoThroughputLimit"], fifo["DeduplicationScope"]) == ("perMessageGroupId", "messageGroup")
        assert fifo["SqsManagedSseEnabled"] is True
    assert "FifoQueue" not in video

    workers = {
        f["Properties"]["Environment"]["Variables"]["JOBSTACK_SERVICE"]: f["Properties"]
        for f in of_type(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "worker.handler.handler"
    }
    assert sorted(workers) == ["JobsStack-dev", "JobsStack-dev-ledger", "JobsStack-dev-video"]
    assert (workers["JobsStack-dev-video"]["Timeout"], workers["JobsStack-dev-video"]["MemorySize"]) == (900, 3008)
    assert workers["JobsStack-dev-video"]["ReservedConcurrentExecutions"] == 6
    assert workers["JobsStack-dev-ledger"]["Environment"]["Variables"]["QUEUE_URL"] == {
        "Ref": queues["JobsStack-dev-ledger-jobs.fifo"][0]
    }
    mappings = {
        m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]: m["Properties"]
        for m in of_type(template, "AWS::Lambda::EventSourceMapping").values()
    }
    ledger_mapping = mappings[queues["JobsStack-dev-ledger-jobs.fifo"][0]]
    assert ledger_mapping["BatchSize"] == 10 and "MaximumBatchingWindowInSeconds" not in ledger_mapping
    assert mappings[queues["JobsStack-dev-video-jobs"][0]]["ScalingConfig"] == {"MaximumConcurrency": 4}
    assert len(mappings) == 3

    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) == 3 * 7 + 1
    video_age = [a for a in alarms.values() if a["Properties"]["AlarmDescription"].startswith("Pool video")
                 and a["Properties"].get("MetricName") == "ApproximateAgeOfOldestMessage"]  # fmt: skip
    assert [a["Properties"]["Threshold"] for a in video_age] == [3600]
    [topic_policy] = of_type(template, "AWS::SNS::TopicPolicy").values()
    [allowed] = [s for s in topic_policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allowed["Condition"]["ArnEquals"]["aws:SourceArn"]) == len(alarms), "every alarm may publish"
    [dashboard] = of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "video: Queue depth" in body and "ledger: Jobs succeeded / failed by type" in body


def _statements(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    return [
        s
        for p in of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def _refs(resource: Any) -> set[str]:
    items = resource if isinstance(resource, list) else [resource]
    return {r["Fn::GetAtt"][0] if "Fn::GetAtt" in r else str(r) for r in items}


def test_iam_is_per_resource_each_worker_its_own_queues_and_every_pools_send_the_sweeper_and_publishers_too(
    pooled: tuple[cdk.cx_api.CloudAssembly, dict[str, Any]],
) -> None:
    template = pooled[1]
    queues = {q["Properties"]["QueueName"]: k for k, q in of_type(template, "AWS::SQS::Queue").items()}
    mains = {queues["JobsStack-dev-jobs"], queues["JobsStack-dev-video-jobs"], queues["JobsStack-dev-ledger-jobs.fifo"]}
    functions = of_type(template, "AWS::Lambda::Function")
    for function in functions.values():
        props = function["Properties"]
        role = props["Role"]["Fn::GetAtt"][0]
        sqs_statements = [s for s in _statements(template, role) if str(s["Action"]).startswith(("sqs", "['sqs"))]
        if props["Handler"] == "worker.handler.handler":
            own = props["Environment"]["Variables"]["QUEUE_URL"]["Ref"]
            own_dlq = props["Environment"]["Variables"]["DLQ_URL"]["Ref"]
            receives = [s for s in sqs_statements if "sqs:ReceiveMessage" in s["Action"]]
            assert set().union(*(_refs(s["Resource"]) for s in receives)) == {own}, f"{role} receives its own only"
            sends = [s for s in sqs_statements if s["Action"] == "sqs:SendMessage"]
            # its DLQ and queue (dead letters, fresh copies), and every pool's queue: a job its completion
            # releases (a group's callback) may run in another pool (db/workflows.py)
            assert set().union(*(_refs(s["Resource"]) for s in sends)) == mains | {own_dlq}, role
            assert len(sqs_statements) == len(receives) + len(sends)
            assert "JOBSTACK_ROUTES" in props["Environment"]["Variables"]
        elif props["Handler"] == "worker.sweeper.handler":
            [send] = sqs_statements
            assert send["Action"] == "sqs:SendMessage" and _refs(send["Resource"]) == mains
            routes = Routes.from_json(_resolved_routes(props["Environment"]["Variables"]["JOBSTACK_ROUTES"]))
            assert routes.types == {"video.transcode": "video", "test-echo": "video", "ledger.post": "ledger"}
            windows = json.loads(props["Environment"]["Variables"]["JOBSTACK_SWEEP_WINDOWS"])
            assert windows["video"][0] == 900 + 60 and windows["default"][0] == 60 + 60
    [publisher] = of_type(template, "AWS::IAM::ManagedPolicy").values()
    [statement] = publisher["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "sqs:SendMessage" and _refs(statement["Resource"]) == mains


def _resolved_routes(value: Any) -> str:
    """The Fn::Join of the routes JSON with each queue's Ref written as an https URL, as CloudFormation would."""
    parts = value["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else f"https://sqs.test/{p['Ref']}" for p in parts)


def test_the_construct_takes_pools_in_a_users_own_stack_checked_by_the_same_rules(tmp_path: Path) -> None:
    """Keyword-only, typed (`PoolSpec`): a user's stack adds a FIFO pool without cdk.json."""
    settings = load_settings(cdk_context(), "dev")
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "TheirStack")
    jobs = Jobs(stack, "Jobs", settings=settings, pools={"orders": {"types": ["order.placed"], "fifo": True}})
    assert sorted(jobs.pools) == ["default", "orders"]
    assert jobs.pools["orders"].pool.fifo and jobs.queue is jobs.pools["default"].queue
    template = app.synth().get_stack_by_name("TheirStack").template
    names = sorted(q["Properties"]["QueueName"] for q in of_type(template, "AWS::SQS::Queue").values())
    assert "JobsStack-dev-orders-jobs.fifo" in names and len(names) == 4
    with pytest.raises(SettingsError, match="pool 'bad' has no types"):
        Jobs(cdk.Stack(app, "Other"), "Jobs", settings=settings, pools={"bad": {}})
    with pytest.raises(TypeError):
        Jobs(stack, "Positional", settings, None)  # type: ignore[call-arg]
