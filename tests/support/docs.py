"""What a documentation page's hidden blocks use to show that its snippet did what the page says: the job a
page declared, published and run once through the real worker (`worker.batch.process_batch`) on the test's
database (`DATABASE_URL`) and embedded queue (`QUEUE_URL`), as `make local` would run it."""

from __future__ import annotations

import os
from typing import Any

import boto3

from db import Queue, create_db, get_job, publish
from tests.support import esm
from tests.support.worker_support import make_config
from worker.batch import process_batch
from worker.runtime import Runtime


def run_one(job_type: str, payload: dict[str, Any]) -> tuple[str, object]:
    """Publish one job of `job_type`, deliver its message to the worker, and return its status and result."""
    sqs = boto3.client("sqs")
    queue = Queue(sqs, os.environ["QUEUE_URL"])
    dlq = Queue(sqs, sqs.create_queue(QueueName="docs-dlq")["QueueUrl"])
    db = create_db(os.environ["DATABASE_URL"])
    runtime = Runtime(make_config(os.environ["DATABASE_URL"], queue, dlq), db=db, sqs=sqs)
    try:
        job = publish(db, job_type, payload, queue=queue)
        esm.deliver(queue, lambda event, ctx: process_batch(event, ctx, runtime))
        done = get_job(db, job.id)
        assert done is not None
        return done.status, done.result
    finally:
        db.dispose()
