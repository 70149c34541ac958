"""Property-based tests of bad input: whatever body and attributes a message carries, the worker neither
raises nor leaves a row `processing`; each record ends dead-lettered with a reason, settled, or returned
to the queue with a named outcome. Messages travel through moto SQS, so they are ones SQS would accept.
"""

from __future__ import annotations

import json
import string
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from db import DB, InvalidPayload, MalformedMessage, get_job_type, parse_body
from db.models import jobs_table
from tests.support.esm import FakeLambdaContext, acknowledge, drain, receive_event
from tests.support.factories import insert_job
from tests.support.queues import queue_pair
from tests.support.worker_support import Calls, make_config
from worker.batch import process_record
from worker.outcomes import Outcome
from worker.runtime import Runtime

pytestmark = pytest.mark.integration

# What SQS accepts in a body or attribute value (#x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD, astral planes).
sqs_text = st.text(
    st.characters(
        codec="utf-8",
        exclude_categories=["Cs"],
        exclude_characters=[chr(c) for c in range(0x20) if c not in (0x9, 0xA, 0xD)] + ["\ufffe", "\uffff"],
    ),
    max_size=60,
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | sqs_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(sqs_text, inner, max_size=3),
    max_leaves=8,
)
storable = st.dictionaries(  # what a row can hold: PostgreSQL's jsonb refuses NUL
    st.sampled_from(["n", "fail", "blob", "x"]) | st.text(string.ascii_letters, max_size=6),
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(string.printable, max_size=20),
    max_size=3,
)
# A body is JSON, so it can carry any character escaped, NUL included, which PostgreSQL text refuses.
escaped_text = st.text(max_size=20)
job_types = st.sampled_from(["test-echo", "count-calls", "no-such-type", "nul\x00type"]) | escaped_text
attribute_names = st.from_regex(r"\A[A-Za-z0-9_-]{1,20}\Z").filter(
    lambda name: not name.lower().startswith(("aws", "amazon"))
)
attributes = st.dictionaries(attribute_names, sqs_text.filter(bool), max_size=4)

RETURNED = {Outcome.RETRY, Outcome.BUSY, Outcome.NOT_FOUND, Outcome.DEFERRED}


@st.composite
def bodies(draw: st.DrawFn, db: DB) -> str:
    """Garbage, JSON of the wrong shape, or the contract's shape with hostile values, sometimes naming a
    real row (whose own type and payload are drawn independently of the message's)."""
    kind = draw(st.sampled_from(["text", "json", "contract", "row"]))
    if kind == "text":
        return draw(sqs_text.filter(bool))  # SQS refuses an empty body
    if kind == "json":
        return json.dumps(draw(json_values))
    if kind == "contract":
        raw_id = draw(st.uuids().map(str) | escaped_text)
        return json.dumps({"jobId": raw_id, "type": draw(job_types), "payload": draw(json_values)})
    row = insert_job(
        db,
        type=draw(st.sampled_from(["test-echo", "count-calls", "retired-type"])),
        payload=draw(storable),
        max_attempts=draw(st.integers(1, 3)),
    )
    message_type = draw(st.sampled_from([row.type, "test-echo"]) | job_types)
    return json.dumps({"jobId": str(row.id), "type": message_type, "payload": draw(json_values)})


def processing_rows(db: DB) -> int:
    with db.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).where(jobs_table.c.status == "processing")) or 0)


@settings(
    max_examples=150,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_message_ends_dead_lettered_settled_or_returned_with_a_reason(
    data: st.DataObject, pg_url: str, pg_db: DB, sqs: Any, calls: Calls
) -> None:
    name = uuid.uuid4().hex  # each example gets its own empty queues
    queue, dlq = queue_pair(sqs, name)
    runtime = Runtime(make_config(pg_url, queue, dlq), db=pg_db, sqs=sqs)
    body = data.draw(bodies(pg_db), label="body")
    attrs = data.draw(attributes, label="attributes")
    queue.client.send_message(
        QueueUrl=queue.url,
        MessageBody=body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attrs.items()},
    )
    event = receive_event(queue)
    [record] = event["Records"]

    result = process_record(record, FakeLambdaContext(), runtime)

    assert result.outcome not in (Outcome.ERROR, Outcome.UNAVAILABLE), result.error
    assert processing_rows(pg_db) == 0, "a row was left processing"
    letters = drain(dlq)
    if result.outcome is Outcome.DEAD_LETTERED:
        [letter] = letters
        assert letter["Body"] == body, "the DLQ holds the body untouched"
        assert letter["MessageAttributes"]["jobstack.error"]["StringValue"]
    else:
        assert letters == []
    if result.outcome in RETURNED:
        assert result.outcome is Outcome.NOT_FOUND or result.error, "a returned record says why"
    row = _row(pg_db, result.job_id) if result.job_id is not None else None
    if row is not None and result.outcome is Outcome.DEAD_LETTERED and row[0] == result.job_type:
        # A message naming another type than its row's is the message's fault; the row stays as it was and
        # the sweeper re-sends it if it is still pending.
        assert row[1] in ("failed", "completed"), "a dead-lettered job's row says why it failed"
    acknowledge(
        queue,
        event,
        {"batchItemFailures": [] if result.outcome.acknowledged else [{"itemIdentifier": record["messageId"]}]},
    )


def _row(db: DB, job_id: uuid.UUID) -> tuple[str, str] | None:
    with db.engine.connect() as conn:
        found = conn.execute(select(jobs_table.c.type, jobs_table.c.status).where(jobs_table.c.id == job_id)).first()
    return None if found is None else (str(found[0]), str(found[1]))


@settings(max_examples=300, deadline=None)
@given(body=sqs_text | json_values.map(json.dumps))
def test_parsing_raises_only_the_named_error(body: str) -> None:
    try:
        message = parse_body(body)
    except MalformedMessage as err:
        error = str(err)
        assert error
    else:
        assert isinstance(message.payload, dict) and message.type


@settings(max_examples=300, deadline=None)
@given(payload=json_values)
def test_payload_validation_raises_only_the_named_error(payload: Any) -> None:
    try:
        document = get_job_type("test-echo").validate(payload)
    except InvalidPayload as err:
        error = str(err)
        assert "test-echo" in error
    else:
        assert json.loads(json.dumps(document)) == document
