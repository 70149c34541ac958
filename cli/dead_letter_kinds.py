"""The dead-letter kinds the CLI treats apart, without importing the database layer (the parser needs
them, and `jobstack --help` must not pay for SQLAlchemy). The kinds themselves are the worker's contract
(worker/contract.py: DeadLetterKind), which imports nothing but the standard library."""

from __future__ import annotations

from worker.contract import DeadLetterKind

#: Dead-letter kinds (the worker's `jobstack.error-kind`) that no redrive can make succeed: the message
#: itself is wrong, or its job has no row. Redrive leaves them in the DLQ unless asked (`--include KIND`).
NEVER_SUCCEED = frozenset(
    {DeadLetterKind.MALFORMED, DeadLetterKind.UNKNOWN_TYPE, DeadLetterKind.NOT_FOUND, DeadLetterKind.TYPE_MISMATCH}
)
#: A message SQS itself moved (maxReceiveCount reached) carries no kind of ours.
SQS_REDRIVE = "sqs_redrive"
#: The job statuses `--status` accepts (db.JobStatus's values; tests/cli keep the two equal).
JOB_STATUSES = ("pending", "processing", "completed", "failed", "cancelled", "scheduled", "waiting")
#: A dead letter whose job has moved on since (retried, so it has a newer message; completed; cancelled;
#: running): redriving it would give the job a second message. A redrive deletes it and counts it.
SUPERSEDED = "superseded"
#: Every kind a dead letter can be shown as (`jobstack dlq redrive --kind`, the console's groups).
ALL_KINDS = (*(str(k) for k in DeadLetterKind), SQS_REDRIVE)
