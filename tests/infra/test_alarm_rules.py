"""Alarms held to CloudWatch's rules, which neither moto nor `cdk synth` enforce.

- An alarm's actions run only when its state changes
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-actions):
  a DLQ depth alarm that stays in ALARM while old dead letters wait tells nobody about new ones. Each pool's
  DLQ has an arrivals alarm as well.
- SQS's NumberOfMessagesSent counts SendMessage calls (the worker's own dead letters) and not the messages
  SQS's redrive moves to a DLQ
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html):
  the arrivals alarm watches both that and a rise of ApproximateNumberOfMessagesVisible.
- AlarmDescription is at most 1,024 characters (AWS::CloudWatch::Alarm's schema; cfn-lint E3033), and
  CloudFormation fails a deploy, half-way, on a longer one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch as cw

from stacks.limits import check_limits
from stacks.settings import SettingsError
from tests.support.synth import assert_checks_pass, cdk_context, of_type, stack_template, synth_app

pytestmark = pytest.mark.infra
#: The review's case: 22 types of 45 characters in one pool.
MANY_TYPES = [f"billing.invoice.{n:02d}." + "x" * (45 - len(f"billing.invoice.{n:02d}.")) for n in range(22)]


def _arrival_alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        alarm_id: alarm["Properties"]
        for alarm_id, alarm in of_type(template, "AWS::CloudWatch::Alarm").items()
        if alarm_id.split("DeadLetterArrivals")[0] != alarm_id
    }


def _check_arrivals(alarm: dict[str, Any], dlq_id: str) -> None:
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    [returned] = [q for q in queries.values() if q.get("ReturnData", True) and "Expression" in q]
    assert returned["Expression"] == "MAX([sent, IF(DIFF(visible) > 0, DIFF(visible), 0)])"
    sent, visible = queries["sent"]["MetricStat"], queries["visible"]["MetricStat"]
    assert (sent["Metric"]["MetricName"], sent["Stat"], sent["Period"]) == ("NumberOfMessagesSent", "Sum", 60)
    assert (visible["Metric"]["MetricName"], visible["Stat"]) == ("ApproximateNumberOfMessagesVisible", "Maximum")
    for stat in (sent, visible):
        [dimension] = stat["Metric"]["Dimensions"]
        assert dimension["Value"] == {"Fn::GetAtt": [dlq_id, "QueueName"]}, "it watches this pool's DLQ"
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["EvaluationPeriods"] == 1 and alarm["TreatMissingData"] == "notBreaching"  # OK after a quiet minute


def _check_every_pools_arrivals(template: dict[str, Any]) -> int:
    """Each pool's arrivals alarm watches that pool's DLQ, and the topic policy lets it publish."""
    queues = of_type(template, "AWS::SQS::Queue")
    [topic_policy] = of_type(template, "AWS::SNS::TopicPolicy").values()
    [allow] = [s for s in topic_policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    arrivals = _arrival_alarms(template)
    for alarm_id, alarm in arrivals.items():
        prefix = alarm_id.split("DeadLetterArrivals")[0]
        [dlq_id] = [k for k in queues if k.startswith(f"{prefix}DeadLetterQueue")]
        _check_arrivals(alarm, dlq_id)
        assert {"Fn::GetAtt": [alarm_id, "Arn"]} in allow["Condition"]["ArnEquals"]["aws:SourceArn"]
    return len(arrivals)


def test_each_new_dead_letter_notifies_even_while_old_ones_wait(templates: dict[str, dict[str, Any]]) -> None:
    for template in templates.values():
        assert _check_every_pools_arrivals(template) == 1


def test_a_pool_with_many_long_types_stays_within_cloudwatchs_limits(tmp_path: Path) -> None:
    context = cdk_context(dev={"pools": {"billing": {"types": MANY_TYPES}, "video": {"types": ["video.transcode"]}}})
    assembly = synth_app(tmp_path / "out", context)
    assert_checks_pass(assembly, ("dev",), tmp_path)  # cfn-lint's E3033 included
    dev = stack_template(assembly, "dev")
    descriptions = [a["Properties"]["AlarmDescription"] for a in of_type(dev, "AWS::CloudWatch::Alarm").values()]
    billing = [d for d in descriptions if d.startswith("Pool billing")]
    assert len(billing) == 7
    assert all(len(d) <= 1024 for d in descriptions), max(map(len, descriptions))
    assert all(d.startswith("Pool billing (22 types: billing.invoice.00.") for d in billing)
    assert all(" more): " in d for d in billing), "the types that do not fit are counted"
    assert any(d.startswith("Pool video (1 type: video.transcode): ") for d in descriptions)
    assert _check_every_pools_arrivals(dev) == 3, "one per pool"


def test_anything_still_over_a_limit_fails_synth_in_one_line() -> None:
    stack = cdk.Stack(cdk.App(), "Limits")
    cw.Alarm(
        stack,
        "Wordy",
        metric=cw.Metric(namespace="N", metric_name="M"),
        threshold=1,
        evaluation_periods=1,
        alarm_description="x" * 1025,
    )
    with pytest.raises(SettingsError) as caught:
        check_limits(stack)
    assert str(caught.value) == (
        "Limits/Wordy/Resource: AlarmDescription is 1025 characters, over CloudFormation's 1024; "
        "shorten what it is built from (a pool's or a schedule's name)"
    )
