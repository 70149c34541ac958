"""`JobsStack`: one deployable copy of the job system per environment (`cdk deploy JobsStack-dev`)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack, Tags
from constructs import Construct

from stacks.jobs_construct import Jobs
from stacks.settings import Settings


class JobsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"jobstack background jobs ({settings.env_name})",
            termination_protection=settings.protected,
            **kwargs,
        )
        self.jobs = Jobs(self, "Jobs", settings=settings)
        Tags.of(self).add("jobstack:environment", settings.env_name)
