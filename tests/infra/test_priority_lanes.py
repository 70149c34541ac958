"""Priority lanes in settings and in the synthesized stack: a pool with `priority` lists no types, runs any
job published with that priority, and is named in the route map publishers and the sweeper read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from db import Routes
from stacks.pools import route_document
from stacks.settings import SettingsError, load_settings
from tests.infra.test_pools import _resolved_routes
from tests.support.synth import assert_checks_pass, cdk_context, of_type, stack_template, synth_app

pytestmark = [pytest.mark.infra, pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")]
LANES = {
    "video": {"types": ["video.transcode"], "timeout_seconds": 900},
    "urgent": {"priority": "high", "max_concurrency": 8},
    "bulk": {"priority": "low", "max_concurrency": 2},
}


@pytest.mark.parametrize(
    ("pools", "message"),
    [
        ({"urgent": {"priority": "high", "types": ["t"]}}, "pool 'urgent': a priority lane lists no types"),
        ({"default": {"priority": "high"}}, "pool 'default': the default pool runs every type no pool lists"),
        ({"urgent": {"priority": "High!"}}, "pool 'urgent': priority must be 1-24 lowercase letters"),
        ({"urgent": {"priority": 1}}, "pool 'urgent': priority must be 1-24 lowercase letters"),
        ({"urgent": {"priority": "high", "fifo": True}}, "pool 'urgent': a priority lane is a standard queue"),
        ({"a": {"priority": "high"}, "b": {"priority": "high"}}, "pool 'b': priority 'high' is also pool 'a''s"),
        ({"urgent": {}}, "pool 'urgent' has no types: list the job types it runs"),
    ],
)
def test_bad_lanes_are_one_line_naming_the_pool(pools: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(cdk_context(alone=True, dev={"pools": pools}), "dev")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_route_map_names_lanes_only_when_there_are_some() -> None:
    """A stack without lanes publishes the map it always did (no `priorities` key: `cdk diff` stays empty)."""
    lanes = load_settings(cdk_context(alone=True, dev={"pools": LANES}), "dev").all_pools
    document = route_document(lanes, lambda p: f"https://q/{p.name}")
    assert document["priorities"] == {"high": "urgent", "low": "bulk"}
    routes = Routes.from_json(json.dumps(document))
    assert routes.pool_for("video.transcode", "high") == "urgent"
    assert routes.pool_for("anything", "low") == "bulk" and routes.pool_for("anything") == "default"
    plain = load_settings(cdk_context(alone=True, dev={"pools": {"video": LANES["video"]}}), "dev").all_pools
    assert "priorities" not in route_document(plain, lambda p: p.name)
    assert [p.types_summary() for p in lanes][2:] == [
        "jobs published with priority high", "jobs published with priority low"
    ]  # fmt: skip


@pytest.fixture(scope="module")
def laned(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk.cx_api.CloudAssembly, dict[str, Any]]:
    assembly = synth_app(tmp_path_factory.mktemp("lanes"), cdk_context(alone=True, dev={"pools": LANES}))
    return assembly, stack_template(assembly, "dev")


def test_a_stack_with_lanes_passes_cdk_nag_and_cfn_lint(
    laned: tuple[cdk.cx_api.CloudAssembly, dict[str, Any]], tmp_path: Path
) -> None:
    assert_checks_pass(laned[0], ("dev",), tmp_path)


def test_each_lane_has_its_queue_and_worker_with_its_own_concurrency_and_the_routes_name_it(
    laned: tuple[cdk.cx_api.CloudAssembly, dict[str, Any]],
) -> None:
    template = laned[1]
    names = {q["Properties"]["QueueName"] for q in of_type(template, "AWS::SQS::Queue").values()}
    assert {"JobsStack-dev-urgent-jobs", "JobsStack-dev-bulk-jobs", "JobsStack-dev-urgent-jobs-dlq"} <= names
    workers = {
        f["Properties"]["Description"].removeprefix("JobsStack-dev: "): f["Properties"]
        for f in of_type(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "worker.handler.handler"
    }
    urgent = workers["Runs the urgent pool's jobs (jobs published with priority high)"]
    bulk = workers["Runs the bulk pool's jobs (jobs published with priority low)"]
    assert urgent["ReservedConcurrentExecutions"] == 8 + 2 and bulk["ReservedConcurrentExecutions"] == 2 + 2
    for function in workers.values():  # each worker sends what it releases by the same map, lanes included
        routes = Routes.from_json(_resolved_routes(function["Environment"]["Variables"]["JOBSTACK_ROUTES"]))
        assert routes.priorities == {"high": "urgent", "low": "bulk"}
    output = template["Outputs"]["Routes"]["Value"]
    assert Routes.from_json(_resolved_routes(output)).priorities == {"high": "urgent", "low": "bulk"}
