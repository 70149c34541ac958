"""What one Lambda container keeps between invocations: config, database handle, SQS client.

Built on the first invocation (not at import), each part only when first needed: a batch of successes
never creates an SQS client, so boto3 is only imported on failure paths and for the secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from db import DB, create_db
from worker.config import WorkerConfig, load_config
from worker.secrets import database_url_from_secret

POOL_TIMEOUT_SECONDS = 3


class Runtime:
    def __init__(self, config: WorkerConfig, *, db: DB | None = None, sqs: Any | None = None) -> None:
        self.config = config
        if db is not None:
            self.__dict__["db"] = db
        if sqs is not None:
            self.__dict__["sqs"] = sqs

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Runtime:
        return cls(load_config(os.environ if environ is None else environ))

    @cached_property
    def db(self) -> DB:
        url = self.config.database_url
        if url is None:
            assert self.config.database_secret_arn is not None  # load_config guarantees one of the two
            url = database_url_from_secret(self.config.database_secret_arn)
        # One invocation at a time per container: a checkout that has to wait is waiting for itself (see
        # db.ConnectionBusy), so it gives up in seconds and the job fails with that reason.
        return create_db(url, pool_timeout=POOL_TIMEOUT_SECONDS)

    @cached_property
    def sqs(self) -> Any:
        import boto3  # lazy: see the module docstring

        return boto3.client("sqs")

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()
