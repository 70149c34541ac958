"""A job type's JSON schema as a form: one input per top-level property, of the kind its JSON type asks for
(text, a whole number, a number, a checkbox, a choice among an enum's values), and JSON for what a single
input cannot hold (an object, a list, a union). The form only shapes input; the type's schema (pydantic, in
`publish()`) stays the one judge of a payload, so no rule is written twice and the browser enforces none.

A schema with no properties (any object, as `test-echo`) or a payload with keys the properties do not name
(extra keys a schema allows) is edited as JSON instead: a form of fields would drop those keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The input kinds, by the property's JSON type; anything else is edited as JSON.
_KINDS = {"string": "text", "integer": "integer", "number": "number", "boolean": "boolean"}
PREFIX = "field:"


class FieldError(ValueError):
    """A field whose input cannot be the value its kind asks for: one line naming the field."""


@dataclass(frozen=True)
class FormField:
    name: str
    kind: str  # text | integer | number | boolean | choice | json
    value: str  # as its input shows it ("on" for a checked box)
    required: bool
    choices: tuple[str, ...] = ()
    description: str | None = None

    @property
    def input_name(self) -> str:
        return PREFIX + self.name


def form_fields(
    schema: Mapping[str, Any], payload: Mapping[str, Any] | None = None, shown: Mapping[str, str] | None = None
) -> list[FormField] | None:
    """The schema's fields, filled from `payload` (else each property's default) or, once submitted, from what
    was typed (`shown`); None when the payload is edited as JSON instead."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    if not properties or (payload is not None and set(payload) - set(properties)):
        return None
    required = set(schema.get("required") or ())
    fields = []
    for name, raw_spec in properties.items():
        spec = _resolved(schema, raw_spec)
        kind, choices = _kind(spec)
        if shown is not None:
            value = shown.get(PREFIX + name, "")
        elif payload is not None and name in payload:
            value = _shown(kind, payload[name])
        else:
            value = _shown(kind, spec["default"]) if "default" in spec else ""
        description = spec.get("description") or raw_spec.get("description")
        fields.append(FormField(name, kind, value, name in required, choices, description))
    return fields


def payload_from(fields: list[FormField], form: Mapping[str, str]) -> dict[str, Any]:
    """The payload the submitted fields make. An empty optional field is left out, so the schema's default
    applies; an empty required one is left out too, and the schema says it is required."""
    payload: dict[str, Any] = {}
    for field in fields:
        raw = form.get(field.input_name, "")
        if field.kind == "boolean":
            payload[field.name] = raw == "on"
        elif raw.strip() or (field.kind == "text" and raw):
            payload[field.name] = _value(field, raw)
    return payload


def _value(field: FormField, raw: str) -> Any:
    if field.kind in ("text", "choice"):
        return raw
    if field.kind == "integer":
        try:
            return int(raw.strip())
        except ValueError:
            raise FieldError(f"{field.name}: {raw.strip()[:40]!r} is not a whole number") from None
    if field.kind == "number":  # as JSON reads it: 3 is a whole number, 3.0 and 3e0 are not
        try:
            return int(raw.strip())
        except ValueError:
            pass
        try:
            return float(raw.strip())
        except ValueError:
            raise FieldError(f"{field.name}: {raw.strip()[:40]!r} is not a number") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise FieldError(f"{field.name}: not JSON ({err.msg} at column {err.colno})") from None


def _resolved(schema: Mapping[str, Any], spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """A property's own schema: a `$ref` to the schema's `$defs` (an enum, a nested model) followed, and an
    optional value (`anyOf` of one type and null, pydantic's `X | None`) read as that type."""
    ref = spec.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = (schema.get("$defs") or {}).get(ref.removeprefix("#/$defs/"), {})
        return {**target, **{k: v for k, v in spec.items() if k != "$ref"}}
    options = spec.get("anyOf")
    if isinstance(options, list):
        real = [o for o in options if o.get("type") != "null"]
        if len(real) == 1:
            return {**_resolved(schema, real[0]), **{k: v for k, v in spec.items() if k != "anyOf"}}
    return spec


def _kind(spec: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    enum = spec.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        return "choice", tuple(enum)
    if isinstance(spec.get("const"), str):
        return "choice", (spec["const"],)
    return _KINDS.get(str(spec.get("type")), "json"), ()


def _shown(kind: str, value: Any) -> str:
    if kind == "boolean":
        return "on" if value is True else ""
    if kind in ("text", "choice") and isinstance(value, str):
        return value
    if kind in ("integer", "number") and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return "" if value is None else json.dumps(value, ensure_ascii=False)
