"""Worker pools: one queue, DLQ and worker function per pool, each running the job types routed to it.

A 50 ms e-mail and a 10-minute transcode do not fit one timeout and one memory size, and one queue lets a
flood of one type starve the others. cdk.json's `pools` names the pools and their types; a pool's function
settings (memory, timeout, batching, concurrency, maxReceiveCount, alarm thresholds) default to the
environment's. The `default` pool always exists, keeps the names and logical ids the single-queue stack had
(so existing deployments keep their queues), and runs every type no other pool lists.

`fifo: true` gives a pool FIFO queues: jobs with one ordering key run one at a time in publishing order.
No content-based deduplication (the job id deduplicates), and SQS's high-throughput mode by default
(`fifo_throughput_limit` perMessageGroupId with `deduplication_scope` messageGroup, the only combination AWS
documents for it). Lambda allows no batching window and at most 10 records per batch on a FIFO source.

This module imports no `aws_cdk`: the CLI and the local runner read pools cheaply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypedDict

from worker.contract import Env

if TYPE_CHECKING:
    from stacks.settings import Settings

DEFAULT_POOL = "default"
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
)
FIFO_THROUGHPUT_LIMITS = ("perMessageGroupId", "perQueue")
DEDUPLICATION_SCOPES = ("messageGroup", "queue")
POOL_ONLY_KEYS = ("types", "fifo", "fifo_throughput_limit", "deduplication_scope")
FIFO_MAX_BATCH = 10
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_MAX_NAME = 24
_TYPE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")  # db/job_types.py's rule for a job type's name
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
    memory_mb: int
    timeout_seconds: int
    batch_size: int
    max_batching_window_seconds: int
    max_concurrency: int | None
    max_receive_count: int
    alarm_oldest_message_seconds: int
    alarm_dlq_depth: int


class PoolError(ValueError):
    """One line naming the environment, the pool and the rule."""


@dataclass(frozen=True)
class Pool:
    name: str
    #: The job types routed here; the default pool also runs every type no other pool lists.
    types: tuple[str, ...]
    #: The environment's settings with this pool's own values laid over them (memory, timeout, ...).
    settings: Settings
    fifo: bool = False
    fifo_throughput_limit: str = "perMessageGroupId"
    deduplication_scope: str = "messageGroup"

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_POOL

    @property
    def construct_prefix(self) -> str:
        """Logical-id prefix of the pool's resources: none for the default pool (its ids are the ones the
        single-queue stack had), `Pool<Name>` for the others. Also the prefix of its stack outputs."""
        return output_key(self.name, "")

    def types_summary(self, budget: int = 300) -> str:
        """The pool's types for a description, within `budget` characters: as many as fit, then how many
        more. CloudWatch caps an alarm description at 1,024 characters and Lambda a function's at 256; a
        pool may list any number of types of up to 128 characters."""
        if not self.types:
            return "every job type"
        count = f"{len(self.types)} type{'s' if len(self.types) != 1 else ''}"
        shown: list[str] = []
        for index, job_type in enumerate(self.types):
            rest = len(self.types) - index - 1
            tail = f" and {rest} more" if rest else ""
            candidate = ", ".join([*shown, job_type])
            if len(f"{count}: {candidate}{tail}") > budget:
                hidden = len(self.types) - len(shown)
                return f"{count}: {', '.join(shown)} and {hidden} more" if shown else count
            shown.append(job_type)
        return f"{count}: {', '.join(shown)}"

    @property
    def queue_name(self) -> str:
        return self._name("jobs")

    @property
    def dlq_name(self) -> str:
        return self._name("jobs-dlq")

    @property
    def service(self) -> str:
        """The `Service` dimension of this pool's worker metrics (the default pool keeps the stack name)."""
        stack = self.settings.stack_name
        return stack if self.is_default else f"{stack}-{self.name}"

    def _name(self, suffix: str) -> str:
        stack = self.settings.stack_name
        base = f"{stack}-{suffix}" if self.is_default else f"{stack}-{self.name}-{suffix}"
        return base + (".fifo" if self.fifo else "")


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def output_key(pool: str, key: str) -> str:
    """The stack output `key` of `pool`: the default pool's is the key itself, another's `Pool<Name><key>`."""
    return key if pool == DEFAULT_POOL else f"Pool{camel(pool)}{key}"


def route_document(pools: Sequence[Pool], queue_url: Callable[[Pool], str]) -> dict[str, Any]:
    """The route map a publisher reads (db/routes.py's `Routes`): the stack, each pool's queue, each listed
    type's pool. `queue_url` gives a pool's URL: a token in the template, an estimate for the size check."""
    return {
        "stack": pools[0].settings.stack_name,
        "queues": {p.name: queue_url(p) for p in pools},
        "types": {t: p.name for p in pools for t in p.types},
    }


def sweep_windows(pools: Sequence[Pool]) -> str:
    """JOBSTACK_SWEEP_WINDOWS: each pool's [stale, lost, expired] seconds, as worker/config.py reads it."""
    windows = {
        p.name: [p.settings.stale_after_seconds, p.settings.sweep_lost_after_seconds,
                 p.settings.sweep_expired_after_seconds]
        for p in pools
    }  # fmt: skip
    return json.dumps(windows, separators=(",", ":"))


def parse_pools(where: str, value: Any, settings: Settings) -> tuple[Pool, ...]:
    """cdk.json's `pools` object ({NAME: {types, fifo, ...settings}}) as pools, the default one first.
    Each pool's settings are validated with the environment's own rules (`validate`), so a pool's
    timeout or batch size is refused exactly as the environment's would be."""
    from stacks.settings import SettingsError, coerce, validate

    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise PoolError(f"{where}: pools must be an object of NAME: {{types: [...], ...}}")
    specs = {DEFAULT_POOL: {}, **value}
    if len(specs) > MAX_POOLS:
        raise PoolError(
            f"{where}: pools has {len(specs)} pools with the default: at most {MAX_POOLS} (each adds "
            f"{RESOURCES_PER_POOL} resources, and a CloudFormation stack holds at most 500)"
        )
    pools: list[Pool] = []
    owner: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    for name, spec in specs.items():
        here = f"{where}: pool {name!r}"
        if not isinstance(name, str) or len(name) > _MAX_NAME or not _NAME.match(name):
            raise PoolError(
                f"{where}: pool name {name!r} must be 1-{_MAX_NAME} lowercase letters, digits and single hyphens, "
                "starting with a letter (it names the pool's queues, function and outputs)"
            )
        if not isinstance(spec, Mapping):
            raise PoolError(f"{here} must be an object of settings")
        unknown = sorted(set(spec) - set(POOL_SETTINGS) - set(POOL_ONLY_KEYS))
        if unknown:
            raise PoolError(
                f"{here}: unknown key {unknown[0]!r} (a pool sets {', '.join(POOL_ONLY_KEYS + POOL_SETTINGS)}; "
                "the rest are the environment's)"
            )
        types = spec.get("types", [])
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise PoolError(f"{here}: types must be a list of job type names")
        if not types and name != DEFAULT_POOL:
            raise PoolError(f"{here} has no types: list the job types it runs (only the default pool runs the rest)")
        for job_type in types:
            if not _TYPE_NAME.match(job_type):
                raise PoolError(f"{here}: {job_type!r} is not a job type name (letters, digits, '-', '_', '.')")
            if job_type in owner:
                raise PoolError(
                    f"{here}: job type {job_type!r} is also in pool {owner[job_type]!r}: a type runs in one pool"
                )
            owner[job_type] = name
        fifo = spec.get("fifo", False)
        if not isinstance(fifo, bool):
            raise PoolError(f"{here}: fifo must be true or false, got {fifo!r}")
        overrides = {key: coerce(here, key, spec[key]) for key in POOL_SETTINGS if key in spec}
        pool_settings = replace(settings, **overrides)
        if fifo and pool_settings.batch_size > FIFO_MAX_BATCH:  # before the standard-queue rules, which would
            _fifo_batch_error(here, pool_settings.batch_size)  # ask for a batching window FIFO cannot have
        try:
            validate(here, pool_settings)
        except SettingsError as err:
            raise PoolError(str(err)) from None
        pool = Pool(
            name=name,
            types=tuple(types),
            settings=pool_settings,
            fifo=fifo,
            fifo_throughput_limit=_choice(here, spec, "fifo_throughput_limit", FIFO_THROUGHPUT_LIMITS),
            deduplication_scope=_choice(here, spec, "deduplication_scope", DEDUPLICATION_SCOPES),
        )
        _check_fifo(here, spec, pool)
        if len(pool.dlq_name) > SQS_MAX_QUEUE_NAME:
            raise PoolError(f"{here}: its DLQ name {pool.dlq_name} is over SQS's {SQS_MAX_QUEUE_NAME} characters")
        if camel(name) in prefixes:
            raise PoolError(f"{here}: its outputs would clash with pool {prefixes[camel(name)]!r}'s: rename one")
        prefixes[camel(name)] = name
        pools.append(pool)
    _check_environment_size(where, pools)
    return tuple(pools)


#: Lambda's limit on a function's environment variables, names and values together (4 KB), and what the
#: sweeper's other variables take at most (resolved ARNs and URLs included).
LAMBDA_ENVIRONMENT_BYTES = 4096
_OTHER_VARIABLES_BYTES = 1300
_QUEUE_URL_PREFIX = "https://sqs.ap-southeast-2.amazonaws.com/123456789012/"  # a long region's, for the estimate


def _check_environment_size(where: str, pools: list[Pool]) -> None:
    """The sweeper and the schedules' publisher carry the whole route map (JOBSTACK_ROUTES) and each pool's
    windows in their environment: refused at synth if it could not fit Lambda's 4 KB, not at deploy."""
    if len(pools) < 2:
        return
    routes = {
        "stack": pools[0].settings.stack_name,
        "queues": {p.name: _QUEUE_URL_PREFIX + p.queue_name for p in pools},
        "types": {t: p.name for p in pools for t in p.types},
    }
    windows = {p.name: [99999, 99999, 9999999] for p in pools}
    size = len(Env.ROUTES) + len(json.dumps(routes)) + len(Env.SWEEP_WINDOWS) + len(json.dumps(windows))
    if size + _OTHER_VARIABLES_BYTES > LAMBDA_ENVIRONMENT_BYTES:
        raise PoolError(
            f"{where}: pools list {len(routes['types'])} job types: the sweeper's route map would take about "
            f"{size} bytes of Lambda's {LAMBDA_ENVIRONMENT_BYTES} for environment variables; list fewer (the "
            "default pool runs every type no pool lists)"
        )


def _choice(here: str, spec: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = spec.get(key, allowed[0])
    if value not in allowed:
        raise PoolError(f"{here}: {key} must be {' or '.join(allowed)}, got {value!r}")
    return str(value)


def _fifo_batch_error(here: str, batch_size: int) -> None:
    raise PoolError(f"{here}: batch_size {batch_size} is over {FIFO_MAX_BATCH}, Lambda's maximum on FIFO queues")


def _check_fifo(here: str, spec: Mapping[str, Any], pool: Pool) -> None:
    s = pool.settings
    if not pool.fifo:
        for key in ("fifo_throughput_limit", "deduplication_scope"):
            if key in spec:
                raise PoolError(f"{here}: {key} needs fifo: true (standard queues have no such setting)")
        return
    if s.batch_size > FIFO_MAX_BATCH:
        _fifo_batch_error(here, s.batch_size)
    if s.max_batching_window_seconds:
        raise PoolError(f"{here}: max_batching_window_seconds must be 0: Lambda supports no batching window on FIFO")
    if pool.fifo_throughput_limit == "perMessageGroupId" and pool.deduplication_scope != "messageGroup":
        raise PoolError(
            f"{here}: fifo_throughput_limit perMessageGroupId needs deduplication_scope messageGroup (SQS's rule "
            "for high throughput); set fifo_throughput_limit perQueue for queue-wide deduplication"
        )


def pool_of(pools: tuple[Pool, ...], job_type: str) -> Pool:
    """The pool that runs `job_type`: the one listing it, else the default pool."""
    for pool in pools:
        if job_type in pool.types:
            return pool
    return next(p for p in pools if p.is_default)
