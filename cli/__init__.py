"""`jobstack`: the operator's command line for jobstack. It reads both SQS and the `background_jobs` table.

It may import `db/`, `worker/` and `stacks.settings`, never `aws_cdk`.
"""
