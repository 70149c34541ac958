#!/usr/bin/env python3
"""The CDK app: one JobsStack per environment in cdk.json (`cdk deploy JobsStack-dev`).

cdk-nag's AWS Solutions checks run on every synth (see stacks/app_factory.py); an unacknowledged error
fails it. Invalid settings fail it too, with one line naming the environment, the key and the rule.
"""

from __future__ import annotations

import sys

import aws_cdk as cdk

from stacks.app_factory import build_app, synthesize
from stacks.settings import SettingsError

try:
    synthesize(build_app(cdk.App()))
except SettingsError as err:
    print(f"error: {err}", file=sys.stderr)
    sys.exit(1)
