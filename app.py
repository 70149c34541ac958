#!/usr/bin/env python3
"""The CDK app: one JobsStack per environment (`cdk deploy JobsStack-dev`)."""

import aws_cdk as cdk

from stacks.jobs_stack import JobsStack

app = cdk.App()
for env_name in ("dev", "staging", "prod"):
    JobsStack(app, f"JobsStack-{env_name}")
app.synth()
