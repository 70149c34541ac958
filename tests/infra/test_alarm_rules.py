"""Alarms held to CloudWatch's rules, which neither moto nor `cdk synth` enforce.

- An alarm's actions run only when its state changes
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-actions):
  a DLQ depth alarm that stays in ALARM while old dead letters wait tells nobody about new ones. Each pool's
  DLQ has an arrivals alarm as well.
- SQS's NumberOfMessagesSent counts SendMessage calls (the worker's own dead letters) and not the messages
  SQS's redrive moves to a DLQ
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html):
  the arrivals alarm watches both that and a rise of what the DLQ holds, visible or in flight (a 60 s hold by
  `jobstack dlq peek` is no arrival), with a missing point read as empty (SQS publishes for active queues only,
  and one holding messages is active), so the first burst into a DLQ idle for hours is one.
- AlarmDescription is at most 1,024 characters (AWS::CloudWatch::Alarm's schema; cfn-lint E3033), and
  CloudFormation fails a deploy, half-way, on a longer one.
"""

from __future__ import annotations

import itertools
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


ARRIVALS = "MAX([sent, IF(DIFF(held) > 0, DIFF(held), 0)])"
HELD = "FILL(visible, 0) + FILL(hidden, 0)"


def _check_arrivals(alarm: dict[str, Any], dlq_id: str) -> None:
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    [returned] = [q for q in queries.values() if q.get("ReturnData", True) and "Expression" in q]
    assert returned["Expression"] == ARRIVALS
    assert queries["held"]["Expression"] == HELD
    sent, visible, hidden = (queries[k]["MetricStat"] for k in ("sent", "visible", "hidden"))
    assert (sent["Metric"]["MetricName"], sent["Stat"], sent["Period"]) == ("NumberOfMessagesSent", "Sum", 60)
    assert (visible["Metric"]["MetricName"], visible["Stat"]) == ("ApproximateNumberOfMessagesVisible", "Average")
    assert (hidden["Metric"]["MetricName"], hidden["Stat"]) == ("ApproximateNumberOfMessagesNotVisible", "Average")
    for stat in (sent, visible, hidden):
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
    context = cdk_context(
        alone=True, dev={"pools": {"billing": {"types": MANY_TYPES}, "video": {"types": ["video.transcode"]}}}
    )
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


# -- what the arrivals expression sees, minute by minute ------------------------------------------------------
# CloudWatch's metric math, as documented for these functions: FILL(m, 0) puts 0 where m has no point; DIFF is
# each point minus the one before (none for the first); IF(c, a, b) and MAX([..]) per point. `None`: no point
# (SQS publishes queue metrics for active queues only: one with messages, or accessed in the last 6 hours).

Series = list[float | None]


def _fill(m: Series) -> list[float]:
    return [0.0 if v is None else v for v in m]


def _diff(m: Series) -> Series:
    return [None, *(None if a is None or b is None else b - a for a, b in itertools.pairwise(m))]


def _rise_of(m: Series) -> Series:
    return [None if d is None else max(d, 0.0) for d in _diff(m)]


def _new_arrivals(sent: Series, visible: Series, hidden: Series) -> Series:
    """ARRIVALS over HELD, point by point."""
    held: Series = [a + b for a, b in zip(_fill(visible), _fill(hidden), strict=True)]
    return [max([v for v in (s, r) if v is not None], default=None) for s, r in zip(sent, _rise_of(held), strict=True)]


def _old_arrivals(sent: Series, visible: Series) -> Series:
    """The expression before: MAX([sent, IF(DIFF(visible) > 0, DIFF(visible), 0)])."""
    return [
        max([v for v in (s, r) if v is not None], default=None) for s, r in zip(sent, _rise_of(visible), strict=True)
    ]


def _fires(values: Series) -> bool:
    return any(v is not None and v >= 1 for v in values)  # threshold 1, one period


def test_a_peek_or_redrive_hold_is_no_arrival_and_a_first_burst_into_an_idle_dlq_is_one() -> None:
    """Reported: `jobstack dlq peek` holds dead letters for 60 s, so visible dips and comes back and the old
    expression paged for nothing; a DLQ idle for hours has no earlier point, so the first burst had no DIFF."""
    # Five dead letters wait; an operator peeks at minute 2 (held, in flight), they come back at minute 4.
    sent: Series = [0, 0, 0, 0, 0]
    visible: Series = [5, 5, 0, 0, 5]
    hidden: Series = [0, 0, 5, 5, 0]
    assert _fires(_old_arrivals(sent, visible)), "the old expression paged when the hold ended"
    assert not _fires(_new_arrivals(sent, visible, hidden))
    # Idle for hours (no points), then SQS's redrive moves 3 messages in: no SendMessage, so sent is 0.
    sent, visible, hidden = [None, None, 0], [None, None, 3], [None, None, 0]
    assert not _fires(_old_arrivals(sent, visible)), "the old expression had no earlier point to DIFF against"
    assert _fires(_new_arrivals(sent, visible, hidden))
    # The redrive of every dead letter back to the main queue: the DLQ empties, nothing arrives.
    assert not _fires(_new_arrivals([0, 0, 0], [5, 0, None], [0, 5, None]))
