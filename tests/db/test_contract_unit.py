"""The schema and the worker's message parser agree on the wire contract's fields."""

from __future__ import annotations

import json
import uuid

import jsonschema
import pytest

from db import parse_body
from db.message import JobMessage, MalformedMessage
from tests.support.message_contract import SCHEMA

pytestmark = pytest.mark.unit

SAMPLES: list[tuple[str, bool]] = [
    (JobMessage(uuid.uuid4(), "test-echo", {"n": 1, "name": "Zoë"}).body(), True),
    ('{"jobId":"8c0b8c0e-2d7a-4f5e-9d0c-1f2e3d4c5b6a","type":"test-echo"}', True),  # payload defaults to {}
    ('{"jobId":"test-123","type":"test-echo","payload":{}}', False),  # the seeds' runbook example
    ('{"type":"test-echo","payload":{}}', False),
    ('{"jobId":"8c0b8c0e-2d7a-4f5e-9d0c-1f2e3d4c5b6a","type":"","payload":{}}', False),
    ('{"jobId":"8c0b8c0e-2d7a-4f5e-9d0c-1f2e3d4c5b6a","type":"test-echo","payload":[1]}', False),
    ('["not", "an", "object"]', False),
]


@pytest.mark.parametrize(("body", "valid"), SAMPLES)
def test_the_schema_and_the_workers_parser_agree(body: str, valid: bool) -> None:
    try:
        jsonschema.validate(json.loads(body), SCHEMA)
        schema_ok = True
    except jsonschema.ValidationError:
        schema_ok = False
    try:
        parse_body(body)
        parser_ok = True
    except MalformedMessage:
        parser_ok = False
    assert schema_ok == parser_ok == valid
