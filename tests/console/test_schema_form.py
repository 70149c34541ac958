"""A type's schema as the console's form (cli/console/schema_form.py): a field per property, of the kind its
JSON type asks for, filled from defaults or a payload; the payload typed back; JSON where fields would lose
keys. The schema stays the judge: what the form sends, `publish()` validates (tests/console/test_browser.py)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from cli.console.schema_form import FieldError, form_fields, payload_from

pytestmark = pytest.mark.unit


class Plan(StrEnum):
    FREE = "free"
    PRO = "pro"


class Address(BaseModel):
    city: str


class Invoice(BaseModel):
    customer_id: int = Field(description="the customer's number")
    email: str = Field(pattern=r"^[^@]+@[^@]+$")
    amount: float = 0.5
    send: bool = True
    plan: Plan = Plan.FREE
    channel: Literal["email", "sms"] = "email"
    retries: int | None = None
    tags: list[str] = []
    address: Address | None = None


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = ""


SCHEMA = Invoice.model_json_schema()


def _by_name(payload: dict[str, Any] | None = None) -> dict[str, Any]:
    fields = form_fields(SCHEMA, payload)
    assert fields is not None
    return {f.name: f for f in fields}


def test_each_property_is_a_field_of_the_kind_its_json_type_asks_for() -> None:
    fields = _by_name()
    kinds = {name: f.kind for name, f in fields.items()}
    assert kinds == {
        "customer_id": "integer", "email": "text", "amount": "number", "send": "boolean", "plan": "choice",
        "channel": "choice", "retries": "integer", "tags": "json", "address": "json",
    }  # fmt: skip
    assert fields["plan"].choices == ("free", "pro") and fields["channel"].choices == ("email", "sms")
    assert {n for n, f in fields.items() if f.required} == {"customer_id", "email"}
    assert fields["customer_id"].description == "the customer's number"


def test_a_new_form_shows_the_defaults_and_a_replay_its_payload() -> None:
    fresh = _by_name()
    shown = (fresh["amount"].value, fresh["send"].value, fresh["plan"].value, fresh["tags"].value)
    assert shown == ("0.5", "on", "free", "[]")
    assert fresh["customer_id"].value == "" and fresh["retries"].value == ""
    replay = _by_name({"customer_id": 4711, "email": "a@b", "send": False, "address": {"city": "Oslo"}})
    again = (replay["customer_id"].value, replay["send"].value, replay["address"].value)
    assert again == ("4711", "", '{"city": "Oslo"}')


def test_the_fields_make_the_payload_typed_as_json_reads_it() -> None:
    fields = form_fields(SCHEMA)
    assert fields is not None
    form = {
        "field:customer_id": " 4711 ", "field:email": "ada@example.com", "field:amount": "12.5", "field:send": "on",
        "field:plan": "pro", "field:channel": "sms", "field:retries": "", "field:tags": '["vip", "eu"]',
        "field:address": "",
    }  # fmt: skip
    assert payload_from(fields, form) == {
        "customer_id": 4711, "email": "ada@example.com", "amount": 12.5, "send": True, "plan": "pro",
        "channel": "sms", "tags": ["vip", "eu"],
    }  # fmt: skip
    assert Invoice.model_validate(payload_from(fields, form)).retries is None  # left out: the default applies
    unchecked = payload_from(fields, {k: v for k, v in form.items() if k != "field:send"})
    assert unchecked["send"] is False
    assert payload_from(fields, form | {"field:amount": "3"})["amount"] == 3  # a whole number stays one


def test_a_payload_shown_as_fields_comes_back_as_it_was() -> None:
    payload = {"customer_id": 7, "email": "x@y", "amount": 1.25, "send": False, "plan": "pro", "channel": "email",
               "retries": 2, "tags": ["a"], "address": {"city": "Lyon"}}  # fmt: skip
    fields = form_fields(SCHEMA, payload)
    assert fields is not None
    typed = {f.input_name: f.value for f in fields if f.kind != "boolean" or f.value}
    assert payload_from(fields, typed) == payload


@pytest.mark.parametrize(
    ("name", "typed", "said"),
    [
        ("customer_id", "47x", "customer_id: '47x' is not a whole number"),
        ("amount", "twelve", "amount: 'twelve' is not a number"),
        ("tags", "[vip", "tags: not JSON (Expecting value at column 2)"),
    ],
)
def test_an_input_that_cannot_be_its_kind_is_one_line_naming_the_field(name: str, typed: str, said: str) -> None:
    fields = form_fields(SCHEMA)
    assert fields is not None
    with pytest.raises(FieldError) as refused:
        payload_from(fields, {f"field:{name}": typed})
    assert str(refused.value) == said


def test_a_schema_without_properties_or_a_payload_with_extra_keys_is_edited_as_json() -> None:
    assert form_fields({"type": "object", "additionalProperties": True}) is None
    loose = Loose.model_json_schema()
    assert form_fields(loose) is not None
    assert form_fields(loose, {"name": "n", "kept": 1}) is None, "fields would drop the key the schema allows"
