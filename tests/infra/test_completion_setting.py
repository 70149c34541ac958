"""`completion: per_job | batched`, an environment's or a pool's setting: checked at synth, written into the
pool's worker environment by stacks/contract.py and read by worker/config.py (the contract, both sides)."""

from __future__ import annotations

import pytest

from stacks.contract import WorkerQueues, worker_environment
from stacks.settings import SettingsError, load_settings
from tests.support.synth import cdk_context
from worker.config import load_config
from worker.contract import Env

pytestmark = pytest.mark.infra

QUEUES = WorkerQueues(
    "https://sqs.us-east-1.amazonaws.com/123456789012/jobs", "https://sqs.us-east-1.amazonaws.com/123456789012/dlq"
)


def test_a_batched_pools_worker_reads_what_the_stack_writes() -> None:
    pools = {"bulk": {"types": ["test-echo"], "completion": "batched"}}
    settings = load_settings(cdk_context(dev={"pools": pools}), "dev")
    bulk, default = settings.pool("bulk"), settings.pool("default")
    environment = worker_environment(bulk, QUEUES, database_url="postgresql://db/jobs")
    assert environment[Env.COMPLETION] == "batched"
    assert load_config(environment).completion == "batched"
    plain = worker_environment(default, QUEUES, database_url="postgresql://db/jobs")
    assert Env.COMPLETION not in plain  # per_job pools' templates are unchanged
    assert load_config(plain).completion == "per_job"


@pytest.mark.parametrize(
    ("dev", "says"),
    [
        ({"completion": "eventually"}, "completion must be one of per_job, batched, got 'eventually'"),
        (
            {"pools": {"ledger": {"types": ["ledger.post"], "fifo": True, "completion": "batched"}}},
            "completion 'batched' is for standard pools: a FIFO pool's order needs each success durable",
        ),
    ],
)
def test_impossible_completion_settings_are_one_line(dev: dict[str, object], says: str) -> None:
    with pytest.raises(SettingsError, match=says) as caught:
        load_settings(cdk_context(dev=dev), "dev")
    assert "\n" not in str(caught.value)
