"""Every alarm on the worker's namespace watches a metric name and dimension set that a real batch
prints (its EMF lines, read back), for the `Service` the function's environment gives the worker."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from db import DB, Queue, publish
from tests.support.esm import FakeLambdaContext, receive_event
from tests.support.synth import of_type
from tests.support.worker_support import Calls
from worker.batch import process_batch
from worker.contract import METRICS_NAMESPACE, Env
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


def test_every_alarm_on_the_workers_metrics_watches_what_a_batch_prints(
    templates: dict[str, dict[str, Any]],
    pooled_template: dict[str, Any],
    pg_db: DB,
    queue: Queue,
    runtime: Runtime,
    calls: Calls,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(Env.EMF, "1")
    checked = 0
    for template in [*templates.values(), pooled_template]:
        services = {
            f["Properties"]["Environment"]["Variables"][Env.SERVICE]
            for f in of_type(template, "AWS::Lambda::Function").values()
            if Env.SERVICE in f["Properties"].get("Environment", {}).get("Variables", {})
        }
        printed: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        for service in services:  # one real batch per pool's service: one success, one retry
            worker = Runtime(replace(runtime.config, service=service), db=runtime.db, sqs=runtime.sqs)
            publish(pg_db, "count-calls", {"n": 1}, queue=queue)
            capsys.readouterr()
            process_batch(receive_event(queue), FakeLambdaContext(), worker)
            for line in capsys.readouterr().out.splitlines():
                doc = json.loads(line) if line.startswith("{") else {}
                for directive in doc.get("_aws", {}).get("CloudWatchMetrics", []):
                    assert directive["Namespace"] == METRICS_NAMESPACE
                    for dimensions in directive["Dimensions"]:
                        for metric in directive["Metrics"]:
                            printed.add((metric["Name"], tuple((d, str(doc[d])) for d in dimensions)))
        for alarm_id, alarm in of_type(template, "AWS::CloudWatch::Alarm").items():
            properties = alarm["Properties"]
            if properties.get("Namespace") != METRICS_NAMESPACE:
                continue
            watched = (properties["MetricName"], tuple((d["Name"], d["Value"]) for d in properties["Dimensions"]))
            assert watched in printed, f"{alarm_id} watches {watched}, which no batch prints"
            checked += 1
    assert checked == 3 * 2 + 3 * 2, "JobsUnavailable and JobsErrored: per environment, and per pooled pool"
