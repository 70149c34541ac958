"""Builds the app's stacks from cdk.json context, with cdk-nag attached: shared by app.py and the tests."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.environment_size import check_environments
from stacks.jobs_stack import JobsStack
from stacks.overrides import OVERRIDES, with_overrides
from stacks.settings import load_all


def build_app(app: cdk.App) -> cdk.App:
    context = {"jobstack": with_overrides(app.node.try_get_context("jobstack"), app.node.try_get_context(OVERRIDES))}
    for settings in load_all(context):
        env = cdk.Environment(account=settings.account, region=settings.region) if settings.account else None
        JobsStack(app, settings.stack_name, settings=settings, env=env)
    # cdk-nag v3: a validation plugin, so findings are reported (and errors fail) at synth time.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def synthesize(app: cdk.App) -> cdk.cx_api.CloudAssembly:
    """`app.synth()`, then what only the finished templates can tell: every function's environment against
    Lambda's 4 KB (stacks/environment_size.py), a SettingsError in one line if one could exceed it."""
    assembly = app.synth()
    for stack in assembly.stacks:
        region = stack.environment.region
        check_environments(
            stack.template, stack_name=stack.stack_name, region=None if region == "unknown-region" else region
        )
    return assembly
