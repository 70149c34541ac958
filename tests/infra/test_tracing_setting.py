"""The setting `tracing` in the synthesized template, one test per option, each cdk-nag and cfn-lint clean;
the queue-wait alarm watches the metric the worker emits, under the dimensions it emits it with."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from stacks.contract import OTEL_EXPORTER_ENDPOINT
from stacks.settings import SettingsError, load_settings
from tests.support.synth import assert_checks_pass, cdk_context, of_type, stack_template, synth_app
from worker.contract import DIMENSIONS, METRICS_NAMESPACE, QUEUE_WAIT_METRIC, SERVICE_DIMENSION, Env
from worker.metrics import BatchMetrics
from worker.outcomes import Decision, Outcome

pytestmark = [pytest.mark.infra, pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")]
#: Resources of the IAM policies a role got for X-Ray (Lambda active tracing).
XRAY_ACTIONS = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]


def _synth(tmp_path_factory: pytest.TempPathFactory, name: str, **settings: Any) -> tuple[Any, dict[str, Any]]:
    assembly = synth_app(tmp_path_factory.mktemp(name), cdk_context(alone=True, dev=settings))
    return assembly, stack_template(assembly, "dev")


@pytest.fixture(scope="module")
def xray(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk.cx_api.CloudAssembly, dict[str, Any]]:
    return _synth(tmp_path_factory, "xray", tracing="xray", alarm_queue_wait_p99_seconds=30)


@pytest.fixture(scope="module")
def otel(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk.cx_api.CloudAssembly, dict[str, Any]]:
    return _synth(tmp_path_factory, "otel", tracing="otel", otel_exporter_endpoint="https://collector.example.com")


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: f["Properties"] for k, f in of_type(template, "AWS::Lambda::Function").items()}


def _role_actions(template: dict[str, Any], function: dict[str, Any]) -> list[tuple[list[str], Any]]:
    role = function["Role"]["Fn::GetAtt"][0]
    found = []
    for policy in of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                found.append((sorted(actions), statement["Resource"]))
    return found


def test_off_is_the_default_and_changes_nothing(templates: dict[str, dict[str, Any]]) -> None:
    """No TracingConfig, no ADOT layer, no X-Ray grant, no JOBSTACK_TRACING: `cdk diff` of an existing stack
    shows nothing (tests/infra/diff_base.py keeps the committed snapshots)."""
    for function in _functions(templates["dev"]).values():
        assert "TracingConfig" not in function
        assert Env.TRACING not in function["Environment"]["Variables"]
        assert not any("otel" in json.dumps(layer) for layer in function.get("Layers", []))
        assert all(actions != XRAY_ACTIONS for actions, _ in _role_actions(templates["dev"], function))


def test_xray_turns_on_active_tracing_with_its_grant_and_tells_the_worker(
    xray: tuple[cdk.cx_api.CloudAssembly, dict[str, Any]], tmp_path: Path
) -> None:
    assembly, template = xray
    assert_checks_pass(assembly, ("dev",), tmp_path)
    functions = _functions(template)
    assert len(functions) >= 2
    for function in functions.values():
        assert function["TracingConfig"] == {"Mode": "Active"}
        assert function["Environment"]["Variables"][Env.TRACING] == "xray"
        assert (XRAY_ACTIONS, "*") in _role_actions(template, function)
        assert not any("otel" in json.dumps(layer) for layer in function.get("Layers", []))


def test_otel_adds_the_adot_layer_for_the_architecture_and_its_wrapper(
    otel: tuple[cdk.cx_api.CloudAssembly, dict[str, Any]], tmp_path: Path
) -> None:
    """The ADOT Python layer (OpenTelemetry with a collector extension), started by its exec wrapper
    (https://aws-otel.github.io/docs/getting-started/lambda/lambda-python); the SDK exports to the endpoint
    the settings name."""
    assembly, template = otel
    assert_checks_pass(assembly, ("dev",), tmp_path)
    for function in _functions(template).values():
        variables = function["Environment"]["Variables"]
        assert function["TracingConfig"] == {"Mode": "Active"}
        assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/otel-instrument"
        assert variables[Env.TRACING] == "otel"
        assert variables[OTEL_EXPORTER_ENDPOINT] == "https://collector.example.com"
        layers = json.dumps(function["Layers"])
        assert "aws-otel-python-arm64-ver-1-29-0" in layers, layers


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tracing": "jaeger"}, "tracing must be one of off, xray, otel, got 'jaeger'"),
        ({"tracing": "xray", "otel_exporter_endpoint": "https://c.example"}, "otel_exporter_endpoint needs tracing"),
        ({"tracing": "otel", "otel_exporter_endpoint": "http://c.example"}, "must be an https:// URL"),
        ({"alarm_queue_wait_p99_seconds": 0}, "alarm_queue_wait_p99_seconds must be between 1 and 86400, got 0"),
        ({"alarm_queue_wait_p99_seconds": "30"}, "alarm_queue_wait_p99_seconds must be a whole number"),
    ],
)
def test_bad_tracing_settings_are_one_line(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(cdk_context(alone=True, dev=settings), "dev")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_queue_wait_alarm_watches_what_the_worker_emits(
    xray: tuple[cdk.cx_api.CloudAssembly, dict[str, Any]],
) -> None:
    """The contract written once (worker/contract.py) and fed from one side to the other: the EMF document
    a real BatchMetrics prints for a claimed job declares JobQueueWait under a dimension set that is exactly
    the alarm's, in the alarm's namespace."""
    template = xray[1]
    [alarm] = [a["Properties"] for a in of_type(template, "AWS::CloudWatch::Alarm").values()
               if a["Properties"].get("MetricName") == QUEUE_WAIT_METRIC]  # fmt: skip
    assert (alarm["ExtendedStatistic"], alarm["Threshold"], alarm["EvaluationPeriods"]) == ("p99", 30_000, 3)
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    settings = load_settings(cdk_context(alone=True, dev={"tracing": "xray"}), "dev")
    metrics = BatchMetrics(settings.default_pool.service)
    metrics.record(Decision(Outcome.SUCCEEDED, "m", job_type="test-echo", queue_wait_ms=1234.5))
    out = io.StringIO()
    with redirect_stdout(out):
        metrics.flush(out)
    [doc] = [json.loads(line) for line in out.getvalue().splitlines()]
    declared = doc["_aws"]["CloudWatchMetrics"][0]
    assert declared["Namespace"] == alarm["Namespace"] == METRICS_NAMESPACE
    assert {"Name": QUEUE_WAIT_METRIC, "Unit": "Milliseconds"} in declared["Metrics"]
    assert [SERVICE_DIMENSION] in DIMENSIONS and set(dimensions) == {SERVICE_DIMENSION}
    assert doc[SERVICE_DIMENSION] == dimensions[SERVICE_DIMENSION] and doc[QUEUE_WAIT_METRIC] == [1234.5]
