"""What the tests share, in one package, so no test module imports another: strict stand-ins and fault
injectors for AWS (strict_sqs, sqs_faults, esm: the event source mapping's delivery), servers (own_postgres,
pg_proxy), factories (rows; the worker's runtime and a job type that records its runs: worker_support),
synthesis with changed settings and the checks every variant passes (synth), templates created by moto's
CloudFormation (moto_stacks), IAM as AWS decides it (iam), driving `jobstack` (cli_runner) and AWS's documented
log-level filter (lambda_logs). The scratch database and the extension stand-in are cli/'s, shared with bench/.
"""
