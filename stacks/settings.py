"""Per-environment settings for JobsStack, read from `cdk.json` context and validated before any resource
is built.

This module imports no `aws_cdk`, so the local runner and the `jobs` CLI read the very same settings
cheaply. Values the queue derives (visibility timeout, the worker's stale window) are computed here, once,
from the settings they depend on; they are never set by hand.

Every rule raises SettingsError with one line naming the environment, the key and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from stacks.pools import DEFAULT_POOL, Pool, PoolError, parse_pools, pool_of
from stacks.schedules import Schedule, ScheduleError, parse_schedules

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
DLQ_RETENTION_DAYS = 14  # SQS's maximum: a dead letter waits as long as SQS allows
WORKER_BACKOFF_MAX_SECONDS = 900  # the worker's default JOB_BACKOFF_MAX_SECONDS (and SQS's longest delay)
MIN_RECEIVE_COUNT = 5
RESERVED_HEADROOM = 2
SSL_MODES = ("verify-full", "verify-ca", "require", "disable")
#: The public CA bundle of Lambda's Amazon Linux 2023 runtimes. psycopg's bundled OpenSSL looks in its own
#: build directory by default, so the file is named explicitly.
LAMBDA_CA_BUNDLE = "/etc/pki/tls/certs/ca-bundle.crt"
LAMBDA_TASK_ROOT = "/var/task"
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


class SettingsError(ValueError):
    """An invalid setting; its message is the whole explanation."""


@dataclass(frozen=True)
class Settings:
    env_name: str
    account: str | None = None  # with region: an environment-bound stack; without: environment-agnostic
    region: str | None = None
    memory_mb: int = 512
    timeout_seconds: int = 60
    architecture: str = "arm64"
    batch_size: int = 10
    max_batching_window_seconds: int = 0
    max_concurrency: int | None = None
    #: Receives before SQS's redrive moves a message to the DLQ. The worker replaces a returned message by a
    #: fresh copy at half of it (the other half is headroom for throttled receives), so a job's attempts do
    #: not depend on it; at least 5, as AWS recommends for SQS event sources.
    max_receive_count: int = 5
    retention_days: int = 4
    alarm_emails: tuple[str, ...] = ()
    alarm_oldest_message_seconds: int = 900
    alarm_dlq_depth: int = 0  # alarm when the DLQ holds more than this many messages
    log_retention_days: int = 30
    log_level: str = "INFO"
    removal_policy: str = "destroy"
    #: CloudFormation refuses to delete the stack until it is turned off (default: on in prod only).
    termination_protection: bool | None = None
    database_secret_arn: str | None = None  # None: the stack creates an empty secret to fill in
    #: The customer-managed KMS key a user-supplied secret is encrypted with (the worker needs kms:Decrypt).
    database_secret_kms_key_arn: str | None = None
    #: libpq's sslmode for the workers' database connections. verify-full checks the certificate and the
    #: host name; "require" encrypts without checking (the documented opt-out); "disable" only for a
    #: database inside the VPC.
    database_sslmode: str = "verify-full"
    #: A PEM bundle in this repository (under worker/ or db/, so it ships in the asset) with the CA your
    #: database's certificate is signed by, e.g. RDS's global bundle; unset: the Lambda OS's public CAs.
    database_ca_file: str | None = None
    #: Read the database secret through AWS's Parameters and Secrets Lambda Extension (a layer): a cold
    #: worker then never imports boto3 on the happy path (docs/benchmarks.md, "secret"). Off: the SDK.
    secrets_extension: bool = True
    #: Lambda SnapStart for the worker (published versions, the queue's event source on the `live`
    #: alias; connections and the secret are re-made after a restore). Its effect is not measured here.
    snapstart: bool = False
    s3_read_buckets: tuple[str, ...] = ()
    s3_write_buckets: tuple[str, ...] = ()
    #: Periodic jobs (stacks/schedules.py): NAME -> {cron | rate, timezone, type, payload}; each an EventBridge
    #: Scheduler schedule publishing the job once per fire time.
    schedules: tuple[Schedule, ...] = ()
    sweep_interval_minutes: int = 5
    #: Days a completed job, and a failed one with no attempts left, is kept before the sweeper prunes it
    #: (0: kept forever).
    completed_retention_days: int = 30
    failed_retention_days: int = 90
    #: "sqs": SQS-managed keys (SSE-SQS, no cost). "kms": a customer-managed KMS key, created by the stack
    #: (rotated yearly) or yours in queue_kms_key_arn, for key policies, CloudTrail records of every use,
    #: and revocation.
    queue_encryption: str = "sqs"
    queue_kms_key_arn: str | None = None
    #: Optional VPC: the functions run in these subnets (private ones, with a route to SQS and Secrets
    #: Manager through a NAT gateway or VPC endpoints) to reach a database that is not public.
    vpc_id: str | None = None
    vpc_subnet_ids: tuple[str, ...] = ()
    vpc_security_group_ids: tuple[str, ...] = ()  # none: the stack creates one, outbound only
    #: Worker pools (stacks/pools.py), the default one first; each has this environment's settings with its
    #: own values laid over them. Read through `all_pools`, which is never empty.
    pools: tuple[Pool, ...] = ()

    @property
    def all_pools(self) -> tuple[Pool, ...]:
        return self.pools or (Pool(DEFAULT_POOL, (), self),)

    @property
    def default_pool(self) -> Pool:
        return self.all_pools[0]

    def pool(self, name: str) -> Pool:
        """The pool called `name`, or SettingsError listing the pools there are."""
        for pool in self.all_pools:
            if pool.name == name:
                return pool
        names = ", ".join(p.name for p in self.all_pools)
        raise SettingsError(f"{self.stack_name} has no pool {name!r} (its pools: {names})")

    def pool_for_type(self, job_type: str) -> Pool:
        return pool_of(self.all_pools, job_type)

    @property
    def reserved_concurrency(self) -> int | None:
        """max_concurrency plus a little headroom (a manual test invoke, the event source's scaling lag),
        never more: every reserved unit is taken from the account's pool, which must keep 100 unreserved,
        and a reservation the account cannot grant fails the deploy. No max_concurrency, no reservation."""
        return self.max_concurrency + RESERVED_HEADROOM if self.max_concurrency is not None else None

    @property
    def protected(self) -> bool:
        return self.termination_protection if self.termination_protection is not None else self.env_name == "prod"

    @property
    def stack_name(self) -> str:
        return f"JobsStack-{self.env_name}"

    @property
    def visibility_timeout_seconds(self) -> int:
        """AWS's rule for SQS-triggered functions: at least 6 x the function timeout plus the batching
        window, so a message is never visible again while an invocation may still be working on it."""
        return 6 * self.timeout_seconds + self.max_batching_window_seconds

    @property
    def stale_after_seconds(self) -> int:
        """A `processing` row older than this belongs to a dead invocation: the timeout plus a margin."""
        return self.timeout_seconds + 60

    @property
    def sweep_lost_after_seconds(self) -> int:
        """A returned job's message is visible again within the visibility timeout plus the worker's longest
        backoff (900 s): after this, a job still waiting for it has lost it."""
        return self.visibility_timeout_seconds + WORKER_BACKOFF_MAX_SECONDS + 60

    @property
    def sweep_expired_after_seconds(self) -> int:
        """A message sent before this has left the queue for sure: retention, plus the visibility timeout and
        SQS's longest delay. Only then is a still-pending job whose message was sent sent again."""
        return self.retention_days * 86_400 + self.visibility_timeout_seconds + WORKER_BACKOFF_MAX_SECONDS

    @property
    def database_sslrootcert(self) -> str | None:
        """Where the worker finds the CA file on Lambda (None when sslmode checks no certificate)."""
        if self.database_sslmode not in ("verify-full", "verify-ca"):
            return None
        return f"{LAMBDA_TASK_ROOT}/{self.database_ca_file}" if self.database_ca_file else LAMBDA_CA_BUNDLE

    @property
    def queue_name(self) -> str:
        """The default pool's queue (stacks/pools.py names every pool's)."""
        return self.default_pool.queue_name

    @property
    def dlq_name(self) -> str:
        return self.default_pool.dlq_name


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
    }
    for key in merged:
        if key in derived:
            raise SettingsError(
                f"{where}: {key} is derived, not set"
                + (
                    " (max_concurrency + 2): set max_concurrency"
                    if key == "reserved_concurrency"
                    else " (it follows from timeout_seconds and friends)"
                )
            )
        if key not in known:
            raise SettingsError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
    values = {key: coerce(where, key, value) for key, value in merged.items() if key != "pools"}
    settings = Settings(env_name=env_name, **values)
    validate(where, settings)
    return with_pools(settings, merged.get("pools"), where=where)


def with_pools(settings: Settings, pools: Mapping[str, Any] | None, *, where: str | None = None) -> Settings:
    """`settings` with these pools (cdk.json's `pools` shape), checked as load_settings checks them."""
    where = where or f"invalid settings for environment {settings.env_name!r}"
    try:
        settings = replace(settings, pools=parse_pools(where, pools, replace(settings, pools=())))
    except PoolError as err:
        raise SettingsError(str(err)) from None
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
        if value is None and key == "max_concurrency":
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


def validate(where: str, s: Settings) -> None:
    def fail(key: str, rule: str) -> None:
        raise SettingsError(f"{where}: {key} {rule}")

    if (s.account is None) != (s.region is None):
        fail("account", "and region must be set together (or both left out for an environment-agnostic stack)")
    if s.account is not None and not re.fullmatch(r"\d{12}", s.account):
        fail("account", f"must be a 12-digit AWS account id, got {s.account!r}")
    if not 128 <= s.memory_mb <= 10240:
        fail("memory_mb", f"must be between 128 and 10240, got {s.memory_mb}")
    if not 1 <= s.timeout_seconds <= 900:
        fail("timeout_seconds", f"must be between 1 and 900 (Lambda's limit), got {s.timeout_seconds}")
    if s.architecture not in ("arm64", "x86_64"):
        fail("architecture", f"must be 'arm64' or 'x86_64', got {s.architecture!r}")
    if not 1 <= s.batch_size <= 10000:
        fail("batch_size", f"must be between 1 and 10000, got {s.batch_size}")
    if not 0 <= s.max_batching_window_seconds <= 300:
        fail("max_batching_window_seconds", f"must be between 0 and 300, got {s.max_batching_window_seconds}")
    if s.batch_size > 10 and s.max_batching_window_seconds < 1:
        fail("batch_size", f"is {s.batch_size}: a batch over 10 needs max_batching_window_seconds of at least 1")
    if s.visibility_timeout_seconds > 43200:
        fail("timeout_seconds", "gives a visibility timeout (6 x timeout + batching window) over SQS's 12 hours")
    if s.max_concurrency is not None and not 2 <= s.max_concurrency <= 1000:
        fail(
            "max_concurrency", f"must be between 2 and 1000 (the event source mapping's range), got {s.max_concurrency}"
        )
    if not MIN_RECEIVE_COUNT <= s.max_receive_count <= 1000:
        fail(
            "max_receive_count",
            f"must be between {MIN_RECEIVE_COUNT} (AWS's recommendation for Lambda event sources: throttled "
            f"receives count too) and 1000, got {s.max_receive_count}",
        )
    if not 1 <= s.retention_days < DLQ_RETENTION_DAYS:
        fail(
            "retention_days",
            f"must be 1-{DLQ_RETENTION_DAYS - 1}: the DLQ keeps messages {DLQ_RETENTION_DAYS} days and must "
            f"outlive the queue's retention, got {s.retention_days}",
        )
    for email in s.alarm_emails:
        if not _EMAIL.match(email):
            fail("alarm_emails", f"has {email!r}, which is not an e-mail address")
    if s.alarm_oldest_message_seconds < 60:
        fail("alarm_oldest_message_seconds", f"must be at least 60, got {s.alarm_oldest_message_seconds}")
    if s.alarm_oldest_message_seconds >= s.retention_days * 86_400:
        fail(
            "alarm_oldest_message_seconds",
            f"({s.alarm_oldest_message_seconds}) must be below the queue's retention ({s.retention_days} days): "
            "messages expire before they could ever be that old, so the alarm could never fire",
        )
    for key in ("completed_retention_days", "failed_retention_days"):
        if not 0 <= getattr(s, key) <= 3650:
            fail(key, f"must be between 0 (keep forever) and 3650 days, got {getattr(s, key)}")
    if s.alarm_dlq_depth < 0:
        fail("alarm_dlq_depth", f"must not be negative, got {s.alarm_dlq_depth}")
    if s.log_retention_days not in LOG_RETENTION_DAYS:
        fail("log_retention_days", f"must be one of CloudWatch's values ({', '.join(map(str, LOG_RETENTION_DAYS))})")
    if s.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        fail("log_level", f"must be DEBUG, INFO, WARNING or ERROR, got {s.log_level!r}")
    if s.removal_policy not in ("destroy", "retain"):
        fail("removal_policy", f"must be 'destroy' or 'retain', got {s.removal_policy!r}")
    if s.env_name == "prod" and s.removal_policy != "retain":
        fail("removal_policy", "must be 'retain' in prod: a stack deletion must never delete queued jobs")
    if s.database_sslmode not in SSL_MODES:
        fail("database_sslmode", f"must be one of {', '.join(SSL_MODES)}, got {s.database_sslmode!r}")
    if s.env_name == "prod" and s.database_sslmode == "disable":
        fail("database_sslmode", "must not be 'disable' in prod: use 'require' at least")
    if s.database_ca_file is not None:
        ca = Path(s.database_ca_file)
        if ca.is_absolute() or ca.parts[:1] not in (("worker",), ("db",)) or ".." in ca.parts:
            fail(
                "database_ca_file",
                f"must be a path under worker/ or db/ (so it ships in the asset), got {s.database_ca_file!r}",
            )
        if not (REPOSITORY / ca).is_file():
            fail("database_ca_file", f"{s.database_ca_file} does not exist: download your provider's CA bundle there")
        if s.database_sslmode not in ("verify-full", "verify-ca"):
            fail(
                "database_ca_file",
                f"is only used with database_sslmode verify-full or verify-ca, not {s.database_sslmode!r}",
            )
    if s.database_secret_kms_key_arn is not None:
        if s.database_secret_arn is None:
            fail("database_secret_kms_key_arn", "needs database_secret_arn: the stack's own secret uses AWS's key")
        if not _KMS_KEY_ARN.match(s.database_secret_kms_key_arn):
            fail(
                "database_secret_kms_key_arn",
                f"must be a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), got {s.database_secret_kms_key_arn!r}",
            )
    if s.database_secret_arn is not None and not _ARN.match(s.database_secret_arn):
        fail(
            "database_secret_arn",
            f"must be a full Secrets Manager secret ARN, ending in the 6 characters after the name "
            f"(…:secret:NAME-AbCdEf, as the console shows it), got {s.database_secret_arn!r}",
        )
    for key, buckets in (("s3_read_buckets", s.s3_read_buckets), ("s3_write_buckets", s.s3_write_buckets)):
        for bucket in buckets:
            if not _BUCKET.match(bucket):
                fail(key, f"has {bucket!r}, which is not an S3 bucket name")
    if not 1 <= s.sweep_interval_minutes <= 14:
        fail(
            "sweep_interval_minutes",
            f"must be between 1 and 14, got {s.sweep_interval_minutes} (each sweep releases scheduled jobs due "
            "within SQS's 15-minute delay: a longer interval would release some late)",
        )
    if s.queue_encryption not in QUEUE_ENCRYPTION:
        fail("queue_encryption", f"must be 'sqs' (SQS-managed keys) or 'kms' (a KMS key), got {s.queue_encryption!r}")
    if s.queue_kms_key_arn is not None:
        if s.queue_encryption != "kms":
            fail("queue_kms_key_arn", "needs queue_encryption 'kms' (with 'sqs', SQS manages the keys)")
        if not _KMS_KEY_ARN.match(s.queue_kms_key_arn):
            fail(
                "queue_kms_key_arn",
                f"must be a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), not an alias or id, got "
                f"{s.queue_kms_key_arn!r}: IAM grants need the key itself",
            )
    _validate_vpc(fail, s)


def _validate_vpc(fail: Callable[[str, str], None], s: Settings) -> None:
    if s.vpc_id is None:
        for key in ("vpc_subnet_ids", "vpc_security_group_ids"):
            if getattr(s, key):
                fail(key, "needs vpc_id: set the VPC the subnets and security groups belong to")
        return
    if not s.vpc_subnet_ids:
        fail("vpc_id", "needs vpc_subnet_ids: the private subnets the functions run in (two AZs or more)")
    for key, limit in (("vpc_subnet_ids", MAX_SUBNETS), ("vpc_security_group_ids", MAX_SECURITY_GROUPS)):
        ids: tuple[str, ...] = getattr(s, key)
        if len(ids) > limit:
            fail(key, f"has {len(ids)} ids: Lambda allows at most {limit}")
        if len(set(ids)) != len(ids):
            fail(key, "lists an id twice")
    for key, prefix in _EC2_ID_PREFIX.items():
        value = getattr(s, key)
        verb = "is" if isinstance(value, str) else "has"
        for one in (value,) if isinstance(value, str) else value:
            if not re.fullmatch(rf"{prefix}-([0-9a-f]{{8}}|[0-9a-f]{{17}})", one):  # EC2's two id lengths
                fail(key, f"{verb} {one!r}, which is not an id like {prefix}-0123456789abcdef0")
