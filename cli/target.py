"""Which database and queues a command talks to.

Precedence: explicit flags (`--database-url`, `--queue-url`, `--dlq-url`), then environment variables
(`DATABASE_URL`, `QUEUE_URL`, `DLQ_URL`), then the outputs of the deployed `JobsStack-<env>` (`--env`),
whose database URL is read from the stack's secret. With `--env`, an exported variable is refused rather
than silently paired with the stack's other parts: only a flag pairs them. `--endpoint-url` points every
AWS client at an emulator (moto, LocalStack).

`--pool NAME` picks a worker pool's queue, DLQ, event source mapping and log group (the stack's
`Pool<Name>...` outputs; the default pool's are the unprefixed ones). Publishing and retrying with `--env`
and no queue named route each job to its type's pool through the stack's `Routes` output.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cli.errors import USAGE, CliError
from db import DB, Queue, Router, Routes, create_db
from db.destinations import Destination
from stacks.overrides import OVERRIDES, OVERRIDES_VARIABLE, with_overrides
from stacks.pools import DEFAULT_POOL, Pool, output_key
from stacks.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Target:
    env: str | None = None
    database_url_flag: str | None = None
    queue_url_flag: str | None = None
    dlq_url_flag: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    pool: str | None = None
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    # -- AWS clients -------------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        # Adaptive retries: an operator's redrive or retry of thousands of jobs meets throttling, and should
        # slow down rather than fail half-way; what still fails is one line (cli/main.py).
        retries = Config(retries={"mode": "adaptive", "total_max_attempts": 8})
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region_name, config=retries)

    @property
    def region_name(self) -> str:
        return self.region or self.environ.get("AWS_REGION") or self.environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    @cached_property
    def sqs(self) -> Any:
        return self.client("sqs")

    # -- the deployed stack ------------------------------------------------------------------------

    @cached_property
    def outputs(self) -> dict[str, str]:
        if self.env is None:
            return {}
        stack_name = stack_settings(self.env).stack_name
        try:
            stack = self.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
        except Exception as err:
            raise CliError(
                f"cannot read stack {stack_name}: {_aws_reason(err)} (is it deployed? are credentials set?)"
            ) from None
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def _pick(self, flag: str | None, variable: str, output: str) -> str | None:
        if flag:
            return flag
        self._refuse_mixed(variable)
        return self.environ.get(variable) or (self.output(output) if self.env else None)

    @cached_property
    def routes(self) -> Routes | None:
        """The deployed stack's routes (None without --env, or for a stack from before pools)."""
        text = self.outputs.get("Routes") if self.env else None
        return Routes.from_json(text, source=f"the {self.stack_name} Routes output") if text else None

    @property
    def stack_name(self) -> str:
        return f"JobsStack-{self.env}"

    @property
    def pools(self) -> list[str]:
        """The deployed stack's pools, the default first."""
        return list(self.routes.queues) if self.routes else [DEFAULT_POOL]

    def output(self, key: str, pool: str | None = None) -> str | None:
        """A stack output of `pool` (default: --pool's): the default pool's key itself, another's prefixed."""
        pool = pool or self.pool or DEFAULT_POOL
        if pool != DEFAULT_POOL and pool not in self.pools:
            raise CliError(f"{self.stack_name} has no pool {pool!r} (its pools: {', '.join(self.pools)})", USAGE)
        return self.outputs.get(output_key(pool, key))

    def _refuse_mixed(self, variable: str) -> None:
        """With an environment chosen, a URL exported in the shell is most likely another place's (a local
        database beside the prod queue): pairing them takes a flag, never a leftover variable."""
        if self.env and self.environ.get(variable):
            option = "--" + variable.lower().replace("_", "-")
            raise CliError(
                f"--env {self.env} with ${variable} set in your shell: unset {variable} to use JobsStack-{self.env}'s, "
                f"or pass {option} to pair them on purpose",
                USAGE,
            )

    # -- what commands use -------------------------------------------------------------------------

    @property
    def queue_url(self) -> str:
        url = self._pick(self.queue_url_flag, "QUEUE_URL", "QueueUrl")
        if not url:
            raise CliError("no queue: pass --queue-url URL, set QUEUE_URL, or --env ENV", USAGE)
        return url

    @property
    def has_queue(self) -> bool:
        return bool(self._pick(self.queue_url_flag, "QUEUE_URL", "QueueUrl"))

    @property
    def has_dlq(self) -> bool:
        return bool(self._pick(self.dlq_url_flag, "DLQ_URL", "DeadLetterQueueUrl"))

    @property
    def dlq_url(self) -> str:
        url = self._pick(self.dlq_url_flag, "DLQ_URL", "DeadLetterQueueUrl")
        if not url:
            raise CliError("no dead-letter queue: pass --dlq-url URL, set DLQ_URL, or --env ENV", USAGE)
        return url

    @cached_property
    def database_url(self) -> str:
        if self.database_url_flag:
            return self.database_url_flag
        self._refuse_mixed("DATABASE_URL")
        url = self.environ.get("DATABASE_URL")
        if url:
            return url
        if self.env and self.outputs.get("DatabaseSecretArn"):
            from worker.secrets import database_url_from_secret

            return database_url_from_secret(self.outputs["DatabaseSecretArn"], self.client("secretsmanager"))
        raise CliError("no database: pass --database-url URL, set DATABASE_URL, or --env ENV", USAGE)

    @cached_property
    def db(self) -> DB:
        return create_db(self.database_url)

    @property
    def queue(self) -> Queue:
        return Queue(self.sqs, self.queue_url)

    @property
    def destination(self) -> Destination:
        """Where publish and retry send: each job's pool queue by the stack's routes, unless a queue (or a
        pool) was named."""
        if self.routes and not self.pool and not self.queue_url_flag and not self.environ.get("QUEUE_URL"):
            return Router(self.sqs, self.routes)
        return self.queue

    def stack_output(self, key: str, flag_name: str) -> str:
        value = self.output(key)
        if not value:
            raise CliError(f"needs the deployed stack's {key}: pass --env ENV (or {flag_name})", USAGE)
        return value

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()


def _aws_reason(err: Exception) -> str:
    """An AWS error as one short line: code and message; an emulator's HTML error page reduced to its
    status (an API the emulator lacks answers 404 with a page of HTML)."""
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        reason = f"{error.get('Code', type(err).__name__)}: {error.get('Message', '')}".strip(": ")
    else:
        reason = f"{type(err).__name__}: {err}"
    if "<html" in reason.lower() or "<!doctype" in reason.lower():
        status = reason.split(":", 1)[0]
        return f"{status}: an HTML error page (an emulator without this API?)"
    return " ".join(reason.split())[:300]


def stack_pool(env_name: str, pool: str | None) -> Pool:
    """A pool of JobsStack-ENV's settings (the default pool if None), or one usage line naming the pools."""
    try:
        return stack_settings(env_name).pool(pool or DEFAULT_POOL)
    except SettingsError as err:
        raise CliError(str(err), USAGE) from None


def stack_settings(env_name: str) -> Settings:
    """The settings `cdk deploy` would use for JobsStack-ENV, read from this checkout's cdk.json, with
    $JOBSTACK_OVERRIDES laid over them as `-c jobstack-overrides` lays them for a deploy."""
    try:
        context = json.loads((ROOT / "cdk.json").read_text())["context"]
        overrides = os.environ.get(OVERRIDES_VARIABLE)
        if overrides:
            context = {**context, "jobstack": with_overrides(context.get("jobstack"), overrides)}
        return load_settings(context, env_name)
    except SettingsError as err:
        raise CliError(str(err).replace(f"-c {OVERRIDES}", f"${OVERRIDES_VARIABLE}"), USAGE) from None
