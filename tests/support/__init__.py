"""What the tests share, in one package: strict stand-ins and fault injectors for AWS (strict_sqs,
sqs_faults, esm: the event source mapping's delivery), servers (own_postgres, pg_proxy), factories (rows;
the worker's runtime and a job type that records its runs: worker_support) and AWS's documented log-level
filter (lambda_logs). The synthesis helpers of the infra tier still live in tests/infra (conftest.py,
variants.py), and two infra test modules still borrow helpers from others (issue 24's remaining work).
"""
