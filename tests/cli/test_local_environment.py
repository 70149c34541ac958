"""`jobstack local` runs the worker with the environment the stack gives it (stacks/contract.py), and the worker's
own loader accepts it: the local run cannot drift from the deployed one."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cli.target import stack_pool
from stacks.contract import WorkerQueues, worker_environment
from worker.config import load_config
from worker.contract import Env

pytestmark = pytest.mark.unit
QUEUES = WorkerQueues("http://localhost:4566/000000000000/jobs", "http://localhost:4566/000000000000/jobs-dlq")


def test_the_local_environment_is_the_deployed_one_with_a_database_url() -> None:
    pool = stack_pool("dev", None)
    local = worker_environment(pool, QUEUES, database_url="sqlite:///jobs.db")
    deployed = worker_environment(pool, QUEUES, database_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:x")
    assert Env.DATABASE_SECRET_ARN not in local and local[Env.DATABASE_URL] == "sqlite:///jobs.db"
    # the URL says its own sslmode; everything else is the deployed function's
    only_deployed = {Env.DATABASE_SECRET_ARN, Env.DATABASE_SSLMODE, Env.DATABASE_SSLROOTCERT}
    assert {k: v for k, v in deployed.items() if k not in only_deployed} == {
        k: v for k, v in local.items() if k != Env.DATABASE_URL
    }
    config = load_config(local)
    assert (config.queue_url, config.dlq_url, config.database_url) == (
        *(QUEUES.queue_url, QUEUES.dlq_url),
        "sqlite:///jobs.db",
    )
    assert config.stale_after == timedelta(seconds=pool.settings.stale_after_seconds)


def test_a_shorter_local_timeout_moves_the_stale_window_as_the_stack_derives_it() -> None:
    pool = stack_pool("dev", None)
    config = load_config(worker_environment(pool, QUEUES, database_url="sqlite:///jobs.db", timeout_seconds=30))
    assert config.stale_after == timedelta(seconds=90)  # the stack's rule: the timeout plus 60 s
    assert config.function_timeout == timedelta(seconds=30)


def test_the_environment_names_exactly_one_database() -> None:
    pool = stack_pool("dev", None)
    with pytest.raises(ValueError, match="exactly one of database_secret_arn and database_url"):
        worker_environment(pool, QUEUES)
    with pytest.raises(ValueError, match="exactly one"):
        worker_environment(pool, QUEUES, database_url="sqlite:///x", database_secret_arn="arn:x")
