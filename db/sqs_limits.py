"""SQS's limits that publishing and the worker both obey (moto enforces none of them)."""

from __future__ import annotations

#: SQS's maximum message size since August 2025; queues created with a smaller limit pass theirs.
SQS_MAX_MESSAGE_BYTES = 1_048_576
#: Bytes a message must leave free so the worker's dead-letter copy (the same body plus its reason
#: attributes, see worker/transport.py: dead_letter) still fits the queue's limit: a job that cannot be dead-lettered
#: would loop until SQS's redrive drops its reason.
DLQ_ATTRIBUTE_RESERVE = 2048
SQS_MAX_DELAY_SECONDS = 900
SQS_BATCH_ENTRIES = 10
#: ChangeMessageVisibility's longest timeout: 12 hours
#: (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html).
SQS_MAX_VISIBILITY_SECONDS = 43_200
