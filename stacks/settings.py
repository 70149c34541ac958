"""Per-environment settings for JobsStack, read from `cdk.json` context and checked before any resource
is built: loading, and every rule, the environment's and its pools'.

The types (`Settings`, `Pool`, `SettingsError`) and the values they derive (visibility timeout, stale
window, names) are stacks/settings_model.py's, re-exported here; the model imports nothing back. This
module imports no `aws_cdk`, so the local runner and the `jobstack` CLI read the very same settings cheaply.

Every rule raises SettingsError with one line naming the environment (and pool), the key and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from stacks.pools import (
    DEDUPLICATION_SCOPES,
    FIFO_MAX_BATCH,
    FIFO_THROUGHPUT_LIMITS,
    MAX_POOLS,
    POOL_ONLY_KEYS,
    POOL_SETTINGS,
    RESOURCES_PER_POOL,
    SQS_MAX_QUEUE_NAME,
)
from stacks.schedules import ScheduleError, parse_schedules
from stacks.settings_model import (
    DEFAULT_POOL,
    DLQ_RETENTION_DAYS,
    LAMBDA_CA_BUNDLE,
    LAMBDA_TASK_ROOT,
    RESERVED_HEADROOM,
    WORKER_BACKOFF_MAX_SECONDS,
    DjangoProject,
    Pool,
    Settings,
    SettingsError,
    camel,
)
from worker.contract import COMPLETION_MODES, TRACING_MODES, parse_rate_limits

__all__ = [  # the model's names too, so `from stacks.settings import Settings` keeps working
    "DLQ_RETENTION_DAYS", "LAMBDA_CA_BUNDLE", "LAMBDA_TASK_ROOT", "RESERVED_HEADROOM", "WORKER_BACKOFF_MAX_SECONDS",
    "Settings", "SettingsError", "load_all", "load_settings", "with_pools",
]  # fmt: skip

ENVIRONMENTS = ("dev", "staging", "prod")
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
MIN_RECEIVE_COUNT = 5
SSL_MODES = ("verify-full", "verify-ca", "require", "disable")
REPOSITORY = Path(__file__).resolve().parent.parent
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A complete secret ARN ends in the 6 random characters Secrets Manager appends to the name; a partial one
# (the name alone) cannot be used for IAM or GetSecretValue by ARN without guessing.
_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KMS_KEY_ARN = re.compile(  # a key id is a UUID, or mrk- and 32 hex digits for a multi-Region key
    r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/([0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$"
)
QUEUE_ENCRYPTION = ("sqs", "kms")
_EC2_ID_PREFIX = {"vpc_id": "vpc", "vpc_subnet_ids": "subnet", "vpc_security_group_ids": "sg"}
MAX_SUBNETS, MAX_SECURITY_GROUPS = 16, 5  # Lambda's limits per function
_POOL_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_MAX_POOL_NAME = 24
_TYPE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")  # db/job_types.py's rule for a job type's name


def load_settings(context: Mapping[str, Any], env_name: str) -> Settings:
    """Settings for `env_name` from the `jobstack` context object: `defaults` overlaid by the environment."""
    where = f"invalid settings for environment {env_name!r}"
    root = context.get("jobstack")
    if not isinstance(root, Mapping):
        raise SettingsError(f"{where}: cdk.json has no 'jobstack' context object")
    environments = root.get("environments", {})
    if env_name not in environments:
        raise SettingsError(f"{where}: not in cdk.json context jobstack.environments ({', '.join(environments)})")
    merged: dict[str, Any] = {**root.get("defaults", {}), **(environments[env_name] or {})}
    known = {f.name for f in fields(Settings)} - {"env_name"}
    derived = {
        "visibility_timeout_seconds",
        "stale_after_seconds",
        "sweep_lost_after_seconds",
        "sweep_expired_after_seconds",
        "queue_name",
        "dlq_name",
        "protected",
        "database_sslrootcert",
        "reserved_concurrency",
        "known_priorities",
    }
    for key in merged:
        if key in derived:
            because = {
                "reserved_concurrency": " (max_concurrency + 2): set max_concurrency",
                "known_priorities": " (every pool's priority in cdk.json): declare a lane with a pool's priority",
            }
            raise SettingsError(
                f"{where}: {key} is derived, not set"
                + because.get(key, " (it follows from timeout_seconds and friends)")
            )
        if key not in known:
            raise SettingsError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
    values = {key: coerce(where, key, value) for key, value in merged.items() if key != "pools"}
    settings = Settings(env_name=env_name, known_priorities=_lane_priorities(root), **values)
    validate(where, settings)
    return with_pools(settings, merged.get("pools"), where=where)


def _lane_priorities(root: Mapping[str, Any]) -> tuple[str, ...]:
    """Every `priority` a pool declares in `defaults` or any environment (each is validated where it is
    declared): the project's vocabulary of priorities, the same in every environment's route map."""
    sections = [root.get("defaults") or {}, *(root.get("environments") or {}).values()]
    found = {
        spec["priority"]
        for section in sections
        if isinstance(section, Mapping) and isinstance(section.get("pools"), Mapping)
        for spec in section["pools"].values()
        if isinstance(spec, Mapping) and isinstance(spec.get("priority"), str)
    }
    return tuple(sorted(found))


def with_pools(settings: Settings, pools: Mapping[str, Any] | None, *, where: str | None = None) -> Settings:
    """`settings` with these pools (cdk.json's `pools` shape), checked as load_settings checks them."""
    where = where or f"invalid settings for environment {settings.env_name!r}"
    settings = replace(settings, pools=parse_pools(where, pools, replace(settings, pools=())))
    for schedule in settings.schedules:
        pool = settings.pool_for_type(schedule.type)
        if pool.fifo:
            raise SettingsError(
                f"{where}: schedules.{schedule.name} publishes {schedule.type!r}, which runs in FIFO pool "
                f"{pool.name!r}: a FIFO job needs an ordering key, and a schedule has none"
            )
    return settings


def load_all(context: Mapping[str, Any]) -> list[Settings]:
    root = context.get("jobstack") or {}
    names = list((root.get("environments") or {}).keys()) if isinstance(root, Mapping) else []
    return [load_settings(context, name) for name in names or ENVIRONMENTS]


_INT_KEYS = {f.name for f in fields(Settings) if f.type in ("int", "int | None")}
_BOOL_KEYS = {f.name for f in fields(Settings) if f.type in ("bool", "bool | None")}
_LIST_KEYS = {"alarm_emails", "s3_read_buckets", "s3_write_buckets", "vpc_subnet_ids", "vpc_security_group_ids"}


def coerce(where: str, key: str, value: Any) -> Any:
    if key == "django":
        return None if value is None else _django_project(where, value)
    if key == "rate_limits":
        try:
            return tuple(sorted(parse_rate_limits(value, f"{where}: rate_limits").items()))
        except ValueError as err:
            raise SettingsError(str(err)) from None
    if key == "schedules":
        try:
            return parse_schedules(where, value)
        except ScheduleError as err:
            raise SettingsError(str(err)) from None
    if key in _LIST_KEYS:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SettingsError(f"{where}: {key} must be a list of strings")
        return tuple(value)
    if key in _INT_KEYS:
        if value is None and key in ("max_concurrency", "alarm_queue_wait_p99_seconds"):
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{where}: {key} must be a whole number, got {value!r}")
        return value
    if key in _BOOL_KEYS:
        if not isinstance(value, bool):
            raise SettingsError(f"{where}: {key} must be true or false, got {value!r}")
        return value
    if value is not None and not isinstance(value, str):
        raise SettingsError(f"{where}: {key} must be a string, got {value!r}")
    return value


#: A broken rule: the key, and what is wrong with its value (the rest of the one line).
Violation = tuple[str, str]


def validate(where: str, s: Settings) -> None:
    """The environment's (or a pool's) settings against every rule of RULES, in order: SettingsError in one
    line for the first broken one."""
    for rule in RULES:
        for key, what in rule(s):
            raise SettingsError(f"{where}: {key} {what}")


def _account(s: Settings) -> Iterator[Violation]:
    if (s.account is None) != (s.region is None):
        yield ("account", "and region must be set together (or both left out for an environment-agnostic stack)")


def _account_id(s: Settings) -> Iterator[Violation]:
    if s.account is not None and not re.fullmatch(r"\d{12}", s.account):
        yield ("account", f"must be a 12-digit AWS account id, got {s.account!r}")


def _memory_mb(s: Settings) -> Iterator[Violation]:
    if not 128 <= s.memory_mb <= 10240:
        yield ("memory_mb", f"must be between 128 and 10240, got {s.memory_mb}")


def _timeout_seconds(s: Settings) -> Iterator[Violation]:
    if not 1 <= s.timeout_seconds <= 900:
        yield ("timeout_seconds", f"must be between 1 and 900 (Lambda's limit), got {s.timeout_seconds}")


def _architecture(s: Settings) -> Iterator[Violation]:
    if s.architecture not in ("arm64", "x86_64"):
        yield ("architecture", f"must be 'arm64' or 'x86_64', got {s.architecture!r}")


def _batch_size(s: Settings) -> Iterator[Violation]:
    if not 1 <= s.batch_size <= 10000:
        yield ("batch_size", f"must be between 1 and 10000, got {s.batch_size}")


def _max_batching_window_seconds(s: Settings) -> Iterator[Violation]:
    if not 0 <= s.max_batching_window_seconds <= 300:
        yield ("max_batching_window_seconds", f"must be between 0 and 300, got {s.max_batching_window_seconds}")


def _batch_size_needs_window(s: Settings) -> Iterator[Violation]:
    if s.batch_size > 10 and s.max_batching_window_seconds < 1:
        yield ("batch_size", f"is {s.batch_size}: a batch over 10 needs max_batching_window_seconds of at least 1")


def _visibility_timeout(s: Settings) -> Iterator[Violation]:
    if s.visibility_timeout_seconds > 43200:
        yield ("timeout_seconds", "gives a visibility timeout (6 x timeout + batching window) over SQS's 12 hours")


def _max_concurrency(s: Settings) -> Iterator[Violation]:
    if s.max_concurrency is not None and not 2 <= s.max_concurrency <= 1000:
        yield (
            "max_concurrency",
            f"must be between 2 and 1000 (the event source mapping's range), got {s.max_concurrency}",
        )


def _max_receive_count(s: Settings) -> Iterator[Violation]:
    if not MIN_RECEIVE_COUNT <= s.max_receive_count <= 1000:
        yield (
            "max_receive_count",
            f"must be between {MIN_RECEIVE_COUNT} (AWS's recommendation for Lambda event sources: throttled "
            f"receives count too) and 1000, got {s.max_receive_count}",
        )


def _retention_days(s: Settings) -> Iterator[Violation]:
    if not 1 <= s.retention_days < DLQ_RETENTION_DAYS:
        yield (
            "retention_days",
            f"must be 1-{DLQ_RETENTION_DAYS - 1}: the DLQ keeps messages {DLQ_RETENTION_DAYS} days and must "
            f"outlive the queue's retention, got {s.retention_days}",
        )


def _alarm_emails(s: Settings) -> Iterator[Violation]:
    for email in s.alarm_emails:
        if not _EMAIL.match(email):
            yield ("alarm_emails", f"has {email!r}, which is not an e-mail address")


def _alarm_oldest_message_seconds(s: Settings) -> Iterator[Violation]:
    if s.alarm_oldest_message_seconds < 60:
        yield ("alarm_oldest_message_seconds", f"must be at least 60, got {s.alarm_oldest_message_seconds}")


def _alarm_oldest_within_retention(s: Settings) -> Iterator[Violation]:
    if s.alarm_oldest_message_seconds >= s.retention_days * 86_400:
        yield (
            "alarm_oldest_message_seconds",
            f"({s.alarm_oldest_message_seconds}) must be below the queue's retention ({s.retention_days} days): "
            "messages expire before they could ever be that old, so the alarm could never fire",
        )


def _prune_retention_days(s: Settings) -> Iterator[Violation]:
    for key in ("completed_retention_days", "failed_retention_days"):
        if not 0 <= getattr(s, key) <= 3650:
            yield (key, f"must be between 0 (keep forever) and 3650 days, got {getattr(s, key)}")


def _alarm_dlq_depth(s: Settings) -> Iterator[Violation]:
    if s.alarm_dlq_depth < 0:
        yield ("alarm_dlq_depth", f"must not be negative, got {s.alarm_dlq_depth}")


def _log_retention_days(s: Settings) -> Iterator[Violation]:
    if s.log_retention_days not in LOG_RETENTION_DAYS:
        yield ("log_retention_days", f"must be one of CloudWatch's values ({', '.join(map(str, LOG_RETENTION_DAYS))})")


def _log_level(s: Settings) -> Iterator[Violation]:
    if s.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        yield ("log_level", f"must be DEBUG, INFO, WARNING or ERROR, got {s.log_level!r}")


def _completion(s: Settings) -> Iterator[Violation]:
    if s.completion not in COMPLETION_MODES:
        yield ("completion", f"must be one of {', '.join(COMPLETION_MODES)}, got {s.completion!r}")


def _alarm_queue_wait_p99_seconds(s: Settings) -> Iterator[Violation]:
    if s.alarm_queue_wait_p99_seconds is not None and not 1 <= s.alarm_queue_wait_p99_seconds <= 86_400:
        yield ("alarm_queue_wait_p99_seconds", f"must be between 1 and 86400, got {s.alarm_queue_wait_p99_seconds}")


def _tracing(s: Settings) -> Iterator[Violation]:
    if s.tracing not in TRACING_MODES:
        yield ("tracing", f"must be one of {', '.join(TRACING_MODES)}, got {s.tracing!r}")


def _otel_exporter_endpoint(s: Settings) -> Iterator[Violation]:
    if s.otel_exporter_endpoint is not None:
        if s.tracing != "otel":
            yield (
                "otel_exporter_endpoint",
                f"needs tracing 'otel' (the ADOT layer's SDK exports to it), not {s.tracing!r}",
            )
        if not re.fullmatch(r"https://[^\s/]+(/\S*)?", s.otel_exporter_endpoint):
            yield (
                "otel_exporter_endpoint",
                f"must be an https:// URL (spans leave the account), got {s.otel_exporter_endpoint!r}",
            )


def _removal_policy(s: Settings) -> Iterator[Violation]:
    if s.removal_policy not in ("destroy", "retain"):
        yield ("removal_policy", f"must be 'destroy' or 'retain', got {s.removal_policy!r}")


def _removal_policy_in_prod(s: Settings) -> Iterator[Violation]:
    if s.env_name == "prod" and s.removal_policy != "retain":
        yield ("removal_policy", "must be 'retain' in prod: a stack deletion must never delete queued jobs")


def _database_sslmode(s: Settings) -> Iterator[Violation]:
    if s.database_sslmode not in SSL_MODES:
        yield ("database_sslmode", f"must be one of {', '.join(SSL_MODES)}, got {s.database_sslmode!r}")


def _database_sslmode_in_prod(s: Settings) -> Iterator[Violation]:
    if s.env_name == "prod" and s.database_sslmode == "disable":
        yield ("database_sslmode", "must not be 'disable' in prod: use 'require' at least")


def _database_ca_file(s: Settings) -> Iterator[Violation]:
    if s.database_ca_file is not None:
        ca = Path(s.database_ca_file)
        if ca.is_absolute() or ca.parts[:1] not in (("worker",), ("db",)) or ".." in ca.parts:
            yield (
                "database_ca_file",
                f"must be a path under worker/ or db/ (so it ships in the asset), got {s.database_ca_file!r}",
            )
        if not (REPOSITORY / ca).is_file():
            yield ("database_ca_file", f"{s.database_ca_file} does not exist: download your provider's CA bundle there")
        if s.database_sslmode not in ("verify-full", "verify-ca"):
            yield (
                "database_ca_file",
                f"is only used with database_sslmode verify-full or verify-ca, not {s.database_sslmode!r}",
            )


def _database_secret_kms_key_arn(s: Settings) -> Iterator[Violation]:
    if s.database_secret_kms_key_arn is not None:
        if s.database_secret_arn is None:
            yield ("database_secret_kms_key_arn", "needs database_secret_arn: the stack's own secret uses AWS's key")
        if not _KMS_KEY_ARN.match(s.database_secret_kms_key_arn):
            yield (
                "database_secret_kms_key_arn",
                f"must be a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), got {s.database_secret_kms_key_arn!r}",
            )


def _database_secret_arn(s: Settings) -> Iterator[Violation]:
    if s.database_secret_arn is not None and not _ARN.match(s.database_secret_arn):
        yield (
            "database_secret_arn",
            f"must be a full Secrets Manager secret ARN, ending in the 6 characters after the name "
            f"(…:secret:NAME-AbCdEf, as the console shows it), got {s.database_secret_arn!r}",
        )


def _s3_buckets(s: Settings) -> Iterator[Violation]:
    for key, buckets in (("s3_read_buckets", s.s3_read_buckets), ("s3_write_buckets", s.s3_write_buckets)):
        for bucket in buckets:
            if not _BUCKET.match(bucket):
                yield (key, f"has {bucket!r}, which is not an S3 bucket name")


def _sweep_interval_minutes(s: Settings) -> Iterator[Violation]:
    if not 1 <= s.sweep_interval_minutes <= 14:
        yield (
            "sweep_interval_minutes",
            f"must be between 1 and 14, got {s.sweep_interval_minutes} (each sweep releases scheduled jobs due "
            "within SQS's 15-minute delay: a longer interval would release some late)",
        )


def _queue_encryption(s: Settings) -> Iterator[Violation]:
    if s.queue_encryption not in QUEUE_ENCRYPTION:
        yield ("queue_encryption", f"must be 'sqs' (SQS-managed keys) or 'kms' (a KMS key), got {s.queue_encryption!r}")


def _queue_kms_key_arn(s: Settings) -> Iterator[Violation]:
    if s.queue_kms_key_arn is not None:
        if s.queue_encryption != "kms":
            yield ("queue_kms_key_arn", "needs queue_encryption 'kms' (with 'sqs', SQS manages the keys)")
        if not _KMS_KEY_ARN.match(s.queue_kms_key_arn):
            yield (
                "queue_kms_key_arn",
                f"must be a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), not an alias or id, got "
                f"{s.queue_kms_key_arn!r}: IAM grants need the key itself",
            )


def _vpc(s: Settings) -> Iterator[Violation]:
    if s.vpc_id is None:
        for key in ("vpc_subnet_ids", "vpc_security_group_ids"):
            if getattr(s, key):
                yield (key, "needs vpc_id: set the VPC the subnets and security groups belong to")
        return
    if not s.vpc_subnet_ids:
        yield ("vpc_id", "needs vpc_subnet_ids: the private subnets the functions run in (two AZs or more)")
    for key, limit in (("vpc_subnet_ids", MAX_SUBNETS), ("vpc_security_group_ids", MAX_SECURITY_GROUPS)):
        ids: tuple[str, ...] = getattr(s, key)
        if len(ids) > limit:
            yield (key, f"has {len(ids)} ids: Lambda allows at most {limit}")
        if len(set(ids)) != len(ids):
            yield (key, "lists an id twice")
    for key, prefix in _EC2_ID_PREFIX.items():
        value = getattr(s, key)
        verb = "is" if isinstance(value, str) else "has"
        for one in (value,) if isinstance(value, str) else value:
            if not re.fullmatch(rf"{prefix}-([0-9a-f]{{8}}|[0-9a-f]{{17}})", one):  # EC2's two id lengths
                yield (key, f"{verb} {one!r}, which is not an id like {prefix}-0123456789abcdef0")


#: Every rule, in the order they are checked: one function a concern, each yielding what it finds broken.
_MODULE_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def _django_project(where: str, value: Any) -> DjangoProject:
    """cdk.json's `django` entry: {"settings_module", "packages", "requirements", "root"}."""
    shape = (
        'must be {"settings_module": "mysite.settings", "packages": ["mysite", ...], "requirements": '
        '"path/to/requirements.txt"} (and "root", where manage.py is, default ".")'
    )
    if not isinstance(value, Mapping) or not {"settings_module", "packages", "requirements"} <= value.keys():
        raise SettingsError(f"{where}: django {shape}")
    unknown = sorted(value.keys() - {"settings_module", "packages", "requirements", "root"})
    packages = value["packages"]
    if unknown or not isinstance(packages, list) or not packages or not all(isinstance(p, str) for p in packages):
        raise SettingsError(f"{where}: django {shape}" + (f"; unknown key {unknown[0]!r}" if unknown else ""))
    strings = {k: value.get(k, ".") for k in ("settings_module", "requirements", "root")}
    if not all(isinstance(v, str) for v in strings.values()):
        raise SettingsError(f"{where}: django {shape}")
    return DjangoProject(strings["settings_module"], tuple(packages), strings["requirements"], strings["root"])


def _django(s: Settings) -> Iterator[Violation]:
    """The project must be shippable: every path inside the repository and present, the settings module one of
    the shipped packages' modules (the worker imports it at its first Django task)."""
    project = s.django
    if project is None:
        return
    root = REPOSITORY / project.root
    for name, relative in (("root", project.root), ("requirements", project.requirements)):
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            yield ("django", f"{name} must be a path inside the repository, got {relative!r}")
            return
    if not root.is_dir():
        yield ("django", f"root {project.root!r} is not a directory of the repository")
        return
    if not (REPOSITORY / project.requirements).is_file():
        yield ("django", f"requirements {project.requirements!r} does not exist: pin Django and what your tasks import")
    for package in project.packages:
        if not _MODULE_PATH.fullmatch(package) or "." in package or not (root / package / "__init__.py").is_file():
            yield (
                "django",
                f"packages: {package!r} is not a package under {project.root!r} (a directory with __init__.py)",
            )
        elif package in ("worker", "db", "jobstack"):
            yield ("django", f"packages: {package!r} is the worker's own; name your project's packages")
    module = project.settings_module
    if not _MODULE_PATH.fullmatch(module) or module.split(".")[0] not in project.packages:
        yield ("django", f"settings_module {module!r} must be a module of one of the packages {list(project.packages)}")
    elif not (root / (module.replace(".", "/") + ".py")).is_file():
        yield ("django", f"settings_module {module!r}: no {project.root}/{module.replace('.', '/')}.py")


RULES: tuple[Callable[[Settings], Iterator[Violation]], ...] = (
    _account,
    _account_id,
    _memory_mb,
    _timeout_seconds,
    _architecture,
    _batch_size,
    _max_batching_window_seconds,
    _batch_size_needs_window,
    _visibility_timeout,
    _max_concurrency,
    _max_receive_count,
    _retention_days,
    _alarm_emails,
    _alarm_oldest_message_seconds,
    _alarm_oldest_within_retention,
    _prune_retention_days,
    _alarm_dlq_depth,
    _log_retention_days,
    _log_level,
    _completion,
    _alarm_queue_wait_p99_seconds,
    _tracing,
    _otel_exporter_endpoint,
    _removal_policy,
    _removal_policy_in_prod,
    _database_sslmode,
    _database_sslmode_in_prod,
    _database_ca_file,
    _database_secret_kms_key_arn,
    _database_secret_arn,
    _s3_buckets,
    _sweep_interval_minutes,
    _queue_encryption,
    _queue_kms_key_arn,
    _vpc,
    _django,
)


# -- pools ---------------------------------------------------------------------------------------------


def parse_pools(where: str, value: Any, settings: Settings) -> tuple[Pool, ...]:
    """cdk.json's `pools` object ({NAME: {types, fifo, ...settings}}) as pools, the default one first.
    Each pool's settings are validated with the environment's own rules (`validate`), so a pool's
    timeout or batch size is refused exactly as the environment's would be."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise SettingsError(f"{where}: pools must be an object of NAME: {{types: [...], ...}}")
    specs = {DEFAULT_POOL: {}, **value}
    if len(specs) > MAX_POOLS:
        raise SettingsError(
            f"{where}: pools has {len(specs)} pools with the default: at most {MAX_POOLS} (each adds "
            f"{RESOURCES_PER_POOL} resources, and a CloudFormation stack holds at most 500)"
        )
    pools: list[Pool] = []
    lanes: dict[str, str] = {}  # priority -> pool
    owner: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    for name, spec in specs.items():
        here = f"{where}: pool {name!r}"
        if not isinstance(name, str) or len(name) > _MAX_POOL_NAME or not _POOL_NAME.match(name):
            raise SettingsError(
                f"{where}: pool name {name!r} must be 1-{_MAX_POOL_NAME} lowercase letters, digits and single hyphens, "
                "starting with a letter (it names the pool's queues, function and outputs)"
            )
        if not isinstance(spec, Mapping):
            raise SettingsError(f"{here} must be an object of settings")
        unknown = sorted(set(spec) - set(POOL_SETTINGS) - set(POOL_ONLY_KEYS))
        if unknown:
            raise SettingsError(
                f"{here}: unknown key {unknown[0]!r} (a pool sets {', '.join(POOL_ONLY_KEYS + POOL_SETTINGS)}; "
                "the rest are the environment's)"
            )
        types = spec.get("types", [])
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise SettingsError(f"{here}: types must be a list of job type names")
        priority = _priority(here, spec, name, lanes)
        if priority is not None and types:
            raise SettingsError(
                f"{here}: a priority lane lists no types (it runs any type published with priority {priority!r}): "
                "remove types, or make it a pool of its own without priority"
            )
        if not types and name != DEFAULT_POOL and priority is None:
            raise SettingsError(
                f"{here} has no types: list the job types it runs (only the default pool runs the rest), or give "
                "it a priority to make it a priority lane"
            )
        for job_type in types:
            if not _TYPE_NAME.match(job_type):
                raise SettingsError(f"{here}: {job_type!r} is not a job type name (letters, digits, '-', '_', '.')")
            if job_type in owner:
                raise SettingsError(
                    f"{here}: job type {job_type!r} is also in pool {owner[job_type]!r}: a type runs in one pool"
                )
            owner[job_type] = name
        fifo = spec.get("fifo", False)
        if not isinstance(fifo, bool):
            raise SettingsError(f"{here}: fifo must be true or false, got {fifo!r}")
        overrides = {key: coerce(here, key, spec[key]) for key in POOL_SETTINGS if key in spec}
        pool_settings = replace(settings, **overrides)
        if fifo and pool_settings.completion == "batched":
            raise SettingsError(
                f"{here}: completion 'batched' is for standard pools: a FIFO pool's order needs each success "
                "durable before the next job of its group runs (completion 'per_job')"
            )
        if fifo and pool_settings.batch_size > FIFO_MAX_BATCH:  # before the standard-queue rules, which would
            _fifo_batch_error(here, pool_settings.batch_size)  # ask for a batching window FIFO cannot have
        try:
            validate(here, pool_settings)
        except SettingsError as err:
            raise SettingsError(str(err)) from None
        pool = Pool(
            name=name,
            types=tuple(types),
            settings=pool_settings,
            fifo=fifo,
            fifo_throughput_limit=_choice(here, spec, "fifo_throughput_limit", FIFO_THROUGHPUT_LIMITS),
            deduplication_scope=_choice(here, spec, "deduplication_scope", DEDUPLICATION_SCOPES),
            priority=priority,
        )
        _check_fifo(here, spec, pool)
        if len(pool.dlq_name) > SQS_MAX_QUEUE_NAME:
            raise SettingsError(f"{here}: its DLQ name {pool.dlq_name} is over SQS's {SQS_MAX_QUEUE_NAME} characters")
        if camel(name) in prefixes:
            raise SettingsError(f"{here}: its outputs would clash with pool {prefixes[camel(name)]!r}'s: rename one")
        prefixes[camel(name)] = name
        pools.append(pool)
    return tuple(pools)


def _priority(here: str, spec: Mapping[str, Any], name: str, lanes: dict[str, str]) -> str | None:
    """A priority lane's name (what `publish(..., priority=...)` names), checked; None: not a lane."""
    priority = spec.get("priority")
    if priority is None:
        return None
    if name == DEFAULT_POOL:
        raise SettingsError(f"{here}: the default pool runs every type no pool lists and cannot be a priority lane")
    if not isinstance(priority, str) or len(priority) > _MAX_POOL_NAME or not _POOL_NAME.match(priority):
        raise SettingsError(
            f"{here}: priority must be 1-{_MAX_POOL_NAME} lowercase letters, digits and single hyphens (the name "
            f"publishers pass as priority=), got {priority!r}"
        )
    if spec.get("fifo", False):
        raise SettingsError(f"{here}: a priority lane is a standard queue (FIFO jobs keep their pool's order)")
    if priority in lanes:
        raise SettingsError(f"{here}: priority {priority!r} is also pool {lanes[priority]!r}'s: one lane per priority")
    lanes[priority] = name
    return priority


def _choice(here: str, spec: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = spec.get(key, allowed[0])
    if value not in allowed:
        raise SettingsError(f"{here}: {key} must be {' or '.join(allowed)}, got {value!r}")
    return str(value)


def _fifo_batch_error(here: str, batch_size: int) -> None:
    raise SettingsError(f"{here}: batch_size {batch_size} is over {FIFO_MAX_BATCH}, Lambda's maximum on FIFO queues")


def _check_fifo(here: str, spec: Mapping[str, Any], pool: Pool) -> None:
    s = pool.settings
    if not pool.fifo:
        for key in ("fifo_throughput_limit", "deduplication_scope"):
            if key in spec:
                raise SettingsError(f"{here}: {key} needs fifo: true (standard queues have no such setting)")
        return
    if s.batch_size > FIFO_MAX_BATCH:
        _fifo_batch_error(here, s.batch_size)
    if s.max_batching_window_seconds:
        raise SettingsError(
            f"{here}: max_batching_window_seconds must be 0: Lambda supports no batching window on FIFO"
        )
    if pool.fifo_throughput_limit == "perMessageGroupId" and pool.deduplication_scope != "messageGroup":
        raise SettingsError(
            f"{here}: fifo_throughput_limit perMessageGroupId needs deduplication_scope messageGroup (SQS's rule "
            "for high throughput); set fifo_throughput_limit perQueue for queue-wide deduplication"
        )
