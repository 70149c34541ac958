"""Worker pools: one queue, DLQ and worker function per pool, each running the job types routed to it.

A 50 ms e-mail and a 10-minute transcode do not fit one timeout and one memory size, and one queue lets a
flood of one type starve the others. cdk.json's `pools` names the pools and their types; a pool's function
settings (memory, timeout, batching, concurrency, maxReceiveCount, alarm thresholds) default to the
environment's. The `default` pool always exists, keeps the names and logical ids the single-queue stack had
(so existing deployments keep their queues), and runs every type no other pool lists.

`priority: "high"` makes a pool a priority lane: it lists no types, and runs any job published with
`priority="high"` (db/routes.py). SQS has no priority within a queue, so a lane is a queue of its own with
workers of their own: a job in it never waits behind another pool's backlog, only behind its own lane's, and
starts as soon as one of the lane's workers (its `max_concurrency`) is free. Nothing is preempted, and a
lane keeps no order. `priority: "low"` the other way round: bulk work that must not take the type's pool's
workers. A lane's timeout and memory apply to every type published to it, and FIFO types keep their pool.

`fifo: true` gives a pool FIFO queues: jobs with one ordering key run one at a time in publishing order.
No content-based deduplication (the job id deduplicates), and SQS's high-throughput mode by default
(`fifo_throughput_limit` perMessageGroupId with `deduplication_scope` messageGroup, the only combination AWS
documents for it). Lambda allows no batching window and at most 10 records per batch on a FIFO source.

The `Pool` type is stacks/settings_model.py's (re-exported here); parsing and checking cdk.json's `pools` is
stacks/settings.py's. This module holds what the stack publishes about pools: their settings' names, the
route map and the sweep windows. It imports no `aws_cdk`: the CLI and the local runner read it cheaply.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypedDict

from stacks.settings_model import DEFAULT_POOL, Pool, camel, output_key, pool_of

__all__ = ["DEFAULT_POOL", "Pool", "PoolSpec", "camel", "output_key", "pool_of", "route_document", "sweep_windows"]

#: Settings a pool may set for itself; the rest (account, encryption, VPC, ...) belong to the environment.
POOL_SETTINGS = (
    "memory_mb",
    "timeout_seconds",
    "batch_size",
    "max_batching_window_seconds",
    "max_concurrency",
    "max_receive_count",
    "alarm_oldest_message_seconds",
    "alarm_dlq_depth",
    "alarm_queue_wait_p99_seconds",
    "completion",
)
FIFO_THROUGHPUT_LIMITS = ("perMessageGroupId", "perQueue")
DEDUPLICATION_SCOPES = ("messageGroup", "queue")
POOL_ONLY_KEYS = ("types", "fifo", "fifo_throughput_limit", "deduplication_scope", "priority")
FIFO_MAX_BATCH = 10
SQS_MAX_QUEUE_NAME = 80
#: Each pool adds a queue and DLQ with their policies, a worker with its role, policy and log group, an
#: event source mapping and 7 alarms; the rest of the stack takes under 50 of CloudFormation's 500.
RESOURCES_PER_POOL = 16
MAX_POOLS = 30


class PoolSpec(TypedDict, total=False):
    """One pool as cdk.json writes it, or as `Jobs(..., pools={"video": {...}})` takes it in your own stack."""

    types: list[str]
    fifo: bool
    fifo_throughput_limit: str
    deduplication_scope: str
    priority: str
    memory_mb: int
    timeout_seconds: int
    batch_size: int
    max_batching_window_seconds: int
    max_concurrency: int | None
    max_receive_count: int
    alarm_oldest_message_seconds: int
    alarm_dlq_depth: int
    alarm_queue_wait_p99_seconds: int | None


def route_document(pools: Sequence[Pool], queue_url: Callable[[Pool], str]) -> dict[str, Any]:
    """The route map a publisher reads (db/routes.py's `Routes`): the stack, each pool's queue, each listed
    type's pool, and every priority of the project with its lane's pool here, or "" where this environment
    has no lane for it (only when some environment has lanes, so a project without them publishes the map
    it always did). `queue_url` gives a pool's URL: a token in the template, an estimate for the size check."""
    document: dict[str, Any] = {
        "stack": pools[0].settings.stack_name,
        "queues": {p.name: queue_url(p) for p in pools},
        "types": {t: p.name for p in pools for t in p.types},
    }
    lanes = {p.priority: p.name for p in pools if p.priority is not None}
    known = sorted(set(lanes) | set(pools[0].settings.known_priorities))
    if known:  # "": a priority another environment has a lane for, run here in its type's pool
        document["priorities"] = {priority: lanes.get(priority, "") for priority in known}
    return document


def sweep_windows(pools: Sequence[Pool]) -> str:
    """JOBSTACK_SWEEP_WINDOWS: each pool's [stale, lost, expired] seconds, as worker/config.py reads it."""
    windows = {
        p.name: [p.settings.stale_after_seconds, p.settings.sweep_lost_after_seconds,
                 p.settings.sweep_expired_after_seconds]
        for p in pools
    }  # fmt: skip
    return json.dumps(windows, separators=(",", ":"))
