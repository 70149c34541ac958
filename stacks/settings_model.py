"""What an environment's settings are: the `Settings` of one environment and the `Pool`s it runs, their
derived values (visibility timeout, stale window, names), and the one error every settings rule raises.

Types only: loading cdk.json and the rules live in stacks/settings.py, the pools' publishing helpers in
stacks/pools.py, and both import this module, never the reverse. It imports no `aws_cdk`, so the CLI and the
local runner read it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacks.schedules import Schedule
from worker.contract import RateLimit

DEFAULT_POOL = "default"
DLQ_RETENTION_DAYS = 14  # SQS's maximum: a dead letter waits as long as SQS allows
WORKER_BACKOFF_MAX_SECONDS = 900  # the worker's default JOB_BACKOFF_MAX_SECONDS (and SQS's longest delay)
RESERVED_HEADROOM = 2
#: The public CA bundle of Lambda's Amazon Linux 2023 runtimes. psycopg's bundled OpenSSL looks in its own
#: build directory by default, so the file is named explicitly.
LAMBDA_CA_BUNDLE = "/etc/pki/tls/certs/ca-bundle.crt"
LAMBDA_TASK_ROOT = "/var/task"


def stale_after_for(timeout_seconds: int) -> int:
    """A `processing` row older than this belongs to a dead invocation: the function's timeout plus a margin
    (the stack's functions and `jobstack local`, whose timeout may be shorter)."""
    return timeout_seconds + 60


@dataclass(frozen=True)
class DjangoProject:
    """A Django project whose tasks the workers run (jobstack.django): shipped in the asset beside worker/ and
    db/, its settings module named to every function (DJANGO_SETTINGS_MODULE). Paths are the repository's."""

    settings_module: str  # e.g. "mysite.settings", importable from `root`
    packages: tuple[str, ...]  # the top-level packages under `root` the tasks and settings import
    requirements: str  # a pinned requirements file: Django and what the tasks import (installed as wheels)
    root: str = "."  # the directory on sys.path (where manage.py is): its packages land at the asset's root


class SettingsError(ValueError):
    """An invalid setting (an environment's or a pool's); its message is the whole explanation, in one line."""


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
    #: Alarm when the p99 of JobQueueWait (publish or run_at to the first claim) over 5 minutes reaches this
    #: many seconds, three periods running (None: no alarm). Per pool: a pool sets its own.
    alarm_queue_wait_p99_seconds: int | None = None
    log_retention_days: int = 30
    log_level: str = "INFO"
    #: "per_job": each success is durable before the next handler starts (1.1 statements a job); "batched":
    #: a batch's claims in one statement and its successes in another, at least once after a crash
    #: (worker/completion.py). Standard pools only.
    completion: str = "per_job"
    #: worker/contract.py TRACING_MODES: "xray" (Lambda active tracing), "otel" (the ADOT layer, OpenTelemetry
    #: spans exported through its collector, to X-Ray unless otel_exporter_endpoint says where), or "off".
    tracing: str = "off"
    #: With tracing "otel": an OTLP endpoint (https) the functions' SDK exports to instead of the layer's
    #: default (X-Ray), e.g. your collector's.
    otel_exporter_endpoint: str | None = None
    #: Every priority a lane has in any environment of cdk.json (derived): each environment's route map names
    #: them all, so a priority with no lane here runs in its type's pool and a typo is refused in dev as in prod.
    known_priorities: tuple[str, ...] = ()
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
    #: Named rate limits (worker/contract.py: RateLimit): NAME -> {"per_second": N, "burst": N}, shared by
    #: every worker through the database; a handler names one with @job(..., rate_limit=NAME).
    rate_limits: tuple[tuple[str, RateLimit], ...] = ()
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
    #: A Django project whose tasks the workers run (None: none).
    django: DjangoProject | None = None
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
        return stale_after_for(self.timeout_seconds)

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
    #: A priority lane: the pool runs any job type published with this priority (db/routes.py).
    priority: str | None = None

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
        if self.priority is not None:
            return f"jobs published with priority {self.priority}"
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


def pool_of(pools: tuple[Pool, ...], job_type: str) -> Pool:
    """The pool that runs `job_type`: the one listing it, else the default pool."""
    for pool in pools:
        if job_type in pool.types:
            return pool
    return next(p for p in pools if p.is_default)
