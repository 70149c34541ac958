"""`tenant=` on every way in (publish, publish_many, enqueue, workflows, the CLI): kept on the row, and on a
standard queue sent as the message's MessageGroupId, the tenant SQS fair queues balance by ("How Amazon SQS fair
queues work"); every later copy of the message (the sweeper's re-send, the worker's dead letter) keeps it. A
FIFO pool's group stays the ordering key. A tenant SQS would refuse is one line, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from db import DB, JobRequest, Queue, enqueue, get_job, list_jobs, publish, publish_many, resend
from db.workflows import publish_group
from tests.support.esm import receive_event
from tests.support.queues import queue_pair
from tests.support.worker_support import job_type_for_test, make_config
from worker.batch import process_batch
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


def _groups(queue: Queue) -> dict[str, str | None]:
    """Each waiting message's job id and MessageGroupId (they stay invisible for a minute)."""
    import json

    got = queue.client.receive_message(
        QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    return {json.loads(m["Body"])["jobId"]: m.get("Attributes", {}).get("MessageGroupId") for m in got}


def test_every_way_in_keeps_the_tenant_and_sends_it_as_the_group(any_db: DB, queue: Queue) -> None:
    one = publish(any_db, "test-echo", {}, queue=queue, tenant="acme")
    many = publish_many(
        any_db, [JobRequest("test-echo", {}, tenant="globex"), JobRequest("test-echo", {})], queue=queue
    )
    with Session(any_db.engine) as session:
        enqueued = enqueue(session, "test-echo", {}, queue=queue, tenant="initech")
        session.commit()
    group = publish_group(any_db, [JobRequest("test-echo", {}, tenant="umbrella")], queue=queue)
    assert _groups(queue) == {
        str(one.id): "acme", str(many[0].id): "globex", str(many[1].id): None, str(enqueued.id): "initech",
        str(group.jobs[0].id): "umbrella",
    }  # fmt: skip
    assert {j.tenant for j in list_jobs(any_db, limit=10)} == {"acme", "globex", None, "initech", "umbrella"}


def test_a_resend_keeps_the_tenant(any_db: DB, queue: Queue) -> None:
    job = publish(any_db, "test-echo", {}, queue=queue, tenant="acme")
    receive_event(queue)  # the first message, taken
    assert resend([job], queue=queue) == {}
    assert _groups(queue) == {str(job.id): "acme"}


def test_a_fifo_pools_group_stays_the_ordering_key(pg_db: DB, sqs: Any) -> None:
    queue, _ = queue_pair(sqs, "tenants", fifo=True, max_receive_count=10)
    job = publish(pg_db, "test-echo", {}, queue=queue, ordering_key="order-7", tenant="acme")
    assert _groups(queue) == {str(job.id): "order-7"}
    row = get_job(pg_db, job.id)
    assert row is not None and row.tenant == "acme"


def test_the_workers_dead_letter_keeps_the_tenant(pg_db: DB, queue: Queue, dlq: Queue) -> None:
    """The copy takes the group from the record's `attributes.MessageGroupId`: ReceiveMessage returns it as a
    system attribute on standard queues too since fair queues ("MessageGroupId is an attribute used in Amazon SQS
    FIFO and standard queues", SQS API reference, SendMessage/ReceiveMessage), and the event source mapping
    passes the received attributes on. Where a record has none, see the test below."""
    from pydantic import BaseModel

    class Empty(BaseModel):
        pass

    def fails(_ctx: Any) -> None:
        raise RuntimeError("always")

    runtime = Runtime(make_config(pg_db.engine.url.render_as_string(hide_password=False), queue, dlq), db=pg_db,
                      sqs=queue.client)  # fmt: skip
    with job_type_for_test("tenant-fails", Empty, fails, max_attempts=1):
        job = publish(pg_db, "tenant-fails", {}, queue=queue, tenant="acme")
        process_batch(receive_event(queue), None, runtime)
    assert _groups(dlq) == {str(job.id): "acme"}


@pytest.mark.parametrize("tenant", ["", "has space", "ü", "a" * 129])
def test_a_tenant_sqs_would_refuse_is_one_line_and_writes_nothing(any_db: DB, queue: Queue, tenant: str) -> None:
    with pytest.raises(ValueError, match=r"^tenant must be 1-128 letters, digits or punctuation") as refused:
        publish(any_db, "test-echo", {}, queue=queue, tenant=tenant)
    assert "\n" not in str(refused.value)
    assert list_jobs(any_db, limit=1) == [] and _groups(queue) == {}


def test_every_tenant_publish_accepts_is_a_group_id_sqs_accepts(pg_db: DB, queue: Queue) -> None:
    """AWS's rule for MessageGroupId (SendMessage: 1-128 alphanumeric characters and punctuation), which
    tests/support/strict_sqs.py holds and moto does not: the widest tenant publish accepts is sent, and one
    with a space, which publish refuses, SQS refuses too."""
    widest = "Az09" + "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    job = publish(pg_db, "test-echo", {}, queue=queue, tenant=widest)
    assert _groups(queue) == {str(job.id): widest}
    with pytest.raises(Exception, match="MessageGroupId is invalid"):
        queue.client.send_message(QueueUrl=queue.url, MessageBody="x", MessageGroupId="has space")


def test_what_reads_tenants_is_served_by_the_unfinished_jobs_index(pg_db: DB) -> None:
    """The tenants' counts, the claim's running count per tenant and the quota's backlog count each read the
    partial index of unfinished jobs (migration 0019), never the finished history: the statements themselves,
    explained with their parameters."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from db.claiming.tenant_gate import _RUNNING_OF_TENANT
    from db.tenant_quota import _ALCHEMY
    from db.tenants import counts_query

    now = datetime.now(UTC)
    statements = [
        (counts_query(20), {}),
        (_RUNNING_OF_TENANT, {"tenant": "acme", "types": ["a"], "stale_before": now, "silent_before": now}),
        (_ALCHEMY["count"], {"type": "a", "tenant": "acme", "cap": 10}),
    ]
    history = """
        INSERT INTO background_jobs (id, type, payload, status, attempts, max_attempts, created_at, updated_at, tenant)
        SELECT gen_random_uuid(), 'a', '{}', CASE WHEN g % 50 = 0 THEN 'pending' ELSE 'completed' END, 1, 5,
               now(), now(), 'acme'
        FROM generate_series(1, 5000) AS g
    """  # a tenant's history: mostly finished, as a table's is
    with pg_db.begin() as conn:
        conn.execute(text(history))
    with pg_db.autocommit() as conn:
        conn.exec_driver_sql("ANALYZE background_jobs")
    with pg_db.begin() as conn:
        for statement, params in statements:
            bound = statement.bindparams(**params) if params else statement  # type: ignore[attr-defined]
            compiled = bound.compile(conn, compile_kwargs={"render_postcompile": True})
            explained = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.construct_params())
            plan = "\n".join(row[0] for row in explained)
            assert "ix_background_jobs_tenant_unfinished" in plan, plan


def test_a_record_without_a_group_is_copied_without_one_and_the_row_keeps_the_tenant(
    pg_db: DB, queue: Queue, dlq: Queue
) -> None:
    """AWS's worst case, stricter than moto (which returns MessageGroupId on every standard message): a record
    whose event carries no MessageGroupId (a message sent before `tenant=`, or an event source that does not
    pass it). The dead letter goes without a group, which SQS accepts on a standard queue (tests/support/
    strict_sqs.py), never with an empty one, which it refuses; the row keeps the tenant for every later send."""
    from pydantic import BaseModel

    class Empty(BaseModel):
        pass

    def fails(_ctx: Any) -> None:
        raise RuntimeError("always")

    runtime = Runtime(make_config(pg_db.engine.url.render_as_string(hide_password=False), queue, dlq), db=pg_db,
                      sqs=queue.client)  # fmt: skip
    with job_type_for_test("tenant-fails", Empty, fails, max_attempts=1):
        job = publish(pg_db, "tenant-fails", {}, queue=queue, tenant="acme")
        event = receive_event(queue)
        for record in event["Records"]:
            record["attributes"].pop("MessageGroupId", None)
        process_batch(event, None, runtime)
    assert _groups(dlq) == {str(job.id): None}
    row = get_job(pg_db, job.id)
    assert row is not None and row.tenant == "acme"
