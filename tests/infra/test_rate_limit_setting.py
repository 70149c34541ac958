"""`rate_limits`, an environment's setting: checked at synth (one line naming the limiter), written into every
pool's worker environment by stacks/contract.py and read back by worker/config.py (the contract, both sides);
a worker whose handler names an undefined limiter refuses to start."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from db.exceptions import ConfigError
from stacks.contract import WorkerQueues, worker_environment
from stacks.settings import SettingsError, load_settings
from tests.support.synth import cdk_context
from tests.support.worker_support import job_type_for_test
from worker.config import load_config
from worker.contract import Env, RateLimit
from worker.registry import check_rate_limits

pytestmark = pytest.mark.infra

QUEUES = WorkerQueues(
    "https://sqs.us-east-1.amazonaws.com/123456789012/jobs", "https://sqs.us-east-1.amazonaws.com/123456789012/dlq"
)


def test_the_worker_reads_the_limiters_the_stack_writes() -> None:
    limits = {"stripe": {"per_second": 10, "burst": 20}, "llm": {"per_second": 0.5}}
    settings = load_settings(cdk_context(dev={"rate_limits": limits}), "dev")
    environment = worker_environment(settings.pool("default"), QUEUES, database_url="postgresql://db/jobs")
    assert load_config(environment).rate_limits == {"stripe": RateLimit(10.0, 20), "llm": RateLimit(0.5, 1)}
    default = load_settings(cdk_context(), "dev").pool("default")
    plain = worker_environment(default, QUEUES, database_url="postgresql://db/jobs")
    assert Env.RATE_LIMITS not in plain  # templates without limiters are unchanged
    assert load_config(plain).rate_limits == {}


@pytest.mark.parametrize(
    ("limits", "says"),
    [
        ({"stripe": {"per_second": 0}}, "rate_limits.stripe.per_second must be a number above 0"),
        ({"stripe": {"per_second": 5, "burst": 0}}, "rate_limits.stripe.burst must be a whole number of at least 1"),
        ({"stripe": {"rate": 5}}, 'rate_limits.stripe must be {"per_second": N, "burst": N} (burst optional)'),
        ({"no spaces": {"per_second": 1}}, "limiter name 'no spaces' must be 1-64 letters, digits or _.:-"),
        (["stripe"], 'rate_limits must map names to {"per_second": N, "burst": N}'),
    ],
)
def test_bad_limiters_fail_synth_with_one_line(limits: object, says: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(cdk_context(dev={"rate_limits": limits}), "dev")
    message = str(raised.value)
    assert says in message and message.startswith("invalid settings for environment 'dev': ") and "\n" not in message


def test_a_handler_naming_an_undefined_limiter_is_refused_in_one_line() -> None:
    class Empty(BaseModel):
        pass

    with job_type_for_test("charge", Empty, lambda ctx: None, max_attempts=3, rate_limit="stripe"):
        check_rate_limits(["stripe"])
        with pytest.raises(ConfigError) as raised:
            check_rate_limits(["llm"])
    assert str(raised.value) == (
        "handler for 'charge' takes its tokens from rate limit 'stripe', which the settings' rate_limits do not "
        "define (defined: llm)"
    )
