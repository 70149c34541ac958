"""Builds the app's stacks from cdk.json context, with cdk-nag attached: shared by app.py and the tests."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.jobs_stack import JobsStack
from stacks.settings import SettingsError, load_all

#: `cdk deploy -c jobstack-overrides='{"dev": {"database_secret_arn": "..."}}'`: settings for one deploy
#: without editing cdk.json (the local rehearsal names the secret it created). Validated like the rest.
OVERRIDES = "jobstack-overrides"


def build_app(app: cdk.App) -> cdk.App:
    context = {"jobstack": with_overrides(app.node.try_get_context("jobstack"), app.node.try_get_context(OVERRIDES))}
    for settings in load_all(context):
        env = cdk.Environment(account=settings.account, region=settings.region) if settings.account else None
        JobsStack(app, settings.stack_name, settings=settings, env=env)
    # cdk-nag v3: a validation plugin, so findings are reported (and errors fail) at synth time.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def with_overrides(jobstack: Any, overrides: Any) -> Any:
    """cdk.json's `jobstack` object with each environment's overrides laid over it."""
    if overrides is None:
        return jobstack
    try:
        parsed = json.loads(overrides) if isinstance(overrides, str) else overrides
    except json.JSONDecodeError as err:
        raise SettingsError(f'-c {OVERRIDES} is not JSON ({err.msg}): pass \'{{"dev": {{"key": value}}}}\'') from None
    if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
        raise SettingsError(f"-c {OVERRIDES} must map environment names to objects of settings")
    merged = json.loads(json.dumps(jobstack or {}))
    environments = merged.setdefault("environments", {})
    for env, values in parsed.items():
        if env not in environments:
            raise SettingsError(f"-c {OVERRIDES} names environment {env!r}, which cdk.json does not define")
        environments[env] = {**(environments[env] or {}), **values}
    return merged
