"""The stack and the worker hold one contract (worker/contract.py), and these tests feed one side's output
to the other, so a rename on either side fails here, not in production:

- every synthesized function's environment (the base environments, and pools with a FIFO pool and
  schedules) is accepted by the worker's own loader, `worker.config.load_config`, and points the worker at
  its own pool's queues;
- every alarm on the worker's namespace watches a metric name and dimension set that a real batch prints
  (its EMF lines, read back), for the `Service` the function's environment gives the worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.synth import of_type
from worker.config import load_config
from worker.contract import Env

pytestmark = pytest.mark.infra

ACCOUNT, REGION = "123456789012", "us-east-1"


def resolve(value: Any, template: dict[str, Any]) -> Any:
    """CloudFormation's values as AWS would fill them in: a queue's Ref is its URL, GetAtt Arn its ARN."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [resolve(v, template) for v in value]
    if "Ref" in value:
        name = value["Ref"]
        kind = template["Resources"].get(name, {}).get("Type", "")
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        return {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}.get(name, name)
    if "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}" if attribute == "Arn" else f"{name}-{attribute}"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(p, template)) for p in parts)
    raise AssertionError(f"unresolved {value}")


def _environments(template: dict[str, Any], ca_file: Path) -> dict[str, dict[str, str]]:
    functions = of_type(template, "AWS::Lambda::Function")
    found = {}
    for function_id, function in functions.items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        env = {name: str(resolve(value, template)) for name, value in variables.items()}
        if Env.DATABASE_SECRET_ARN in env:  # a secret ARN ends in six characters: the stack's secret's Ref
            env[Env.DATABASE_SECRET_ARN] = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db-AbCdEf"
        if Env.DATABASE_SSLROOTCERT in env:  # Lambda's CA bundle path; this machine has its own elsewhere
            env[Env.DATABASE_SSLROOTCERT] = str(ca_file)
        found[function_id] = env
    return found


def test_every_functions_environment_is_one_the_worker_loads(
    templates: dict[str, dict[str, Any]], pooled_template: dict[str, Any], tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\n")
    loaded = 0
    for template in [*templates.values(), pooled_template]:
        for function_id, env in _environments(template, ca_file).items():
            config = load_config(env)  # raises ConfigError naming the variable it could not take
            loaded += 1
            queue_ref = template["Resources"][function_id]["Properties"]["Environment"]["Variables"][Env.QUEUE_URL]
            assert config.queue_url == resolve(queue_ref, template)
            if function_id.startswith("JobsPoolLedgerWorker"):
                assert queue_ref["Ref"].startswith("JobsPoolLedgerQueue"), "a pool's worker reads its own queue"
                assert config.service == "JobsStack-dev-ledger"
    assert loaded == 3 * 2 + 5, "dev/staging/prod: worker and sweeper; pooled: 3 workers, sweeper, scheduled"
    sweeper = next(e for k, e in _environments(pooled_template, ca_file).items() if k.startswith("JobsSweeper"))
    config = load_config(sweeper)
    assert config.routes is not None and set(config.routes.queues) == {"default", "video", "ledger"}
    assert config.routes.types == {"video.transcode": "video", "ledger.post": "ledger"}
    assert set(config.pool_windows) == set(config.routes.queues) and config.schedule_failures_url
