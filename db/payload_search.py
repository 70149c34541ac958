"""Search by payload: the jobs whose payload contains a JSON document (`{"customer_id": 4711}`), the question an
operator asks during an incident ("which jobs are about customer 4711?").

On PostgreSQL it is jsonb containment, `payload @> document`, served by a GIN index with `jsonb_path_ops`
(migration 0013): the index holds one hash per path to each value, so a containment search reads the few
rows that have every (path, value) asked for. On SQLite (the embedded database of a local run) the same rule
is written out with its JSON functions: each value asked for, at its path, of the same JSON type (so 4711
does not match "4711", nor true match 1); a list asked for matches a payload list holding each of its
values. SQLite has no index for it: a local table is small.

The document is given as text (`payload_document` checks it), kept as canonical JSON in `JobFilter.payload`
and turned into SQL here, per dialect, when a statement is compiled.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Boolean, String, and_, bindparam, cast, exists, func, literal_column, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import ColumnClause

#: A search document's size limit: a search is a question, not a payload.
MAX_DOCUMENT_CHARS = 2000
_EXAMPLE = '{"customer_id": 4711}'


def payload_document(text: str) -> str:
    """`text` as the canonical JSON of a search document (an object). ValueError, one line, if it is not one."""
    if len(text) > MAX_DOCUMENT_CHARS:
        raise ValueError(f"a payload search is at most {MAX_DOCUMENT_CHARS} characters; this one is {len(text)}")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"payload search is not JSON ({err.msg}): give an object like {_EXAMPLE}") from None
    if not isinstance(document, dict):
        raise ValueError(f"payload search must be a JSON object like {_EXAMPLE}, got {text[:60]!r}")
    _check(document)
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _check(value: Any, in_list: bool = False) -> None:
    """What both databases can answer alike: keys without quotes or backslashes (a SQLite JSON path cannot
    name them), and lists of plain values (SQLite cannot compare an object inside a list)."""
    if isinstance(value, dict | list) and in_list:
        raise ValueError("payload search: a list may hold values, not objects or lists; search by a value in it")
    if isinstance(value, dict):
        for key, inner in value.items():
            if '"' in key or "\\" in key:
                raise ValueError(f"payload search key {key[:40]!r}: a key may not hold a quote or a backslash")
            _check(inner)
    elif isinstance(value, list):
        for item in value:
            _check(item, in_list=True)


def search_document(text: str) -> str:
    """What an operator types, as a search document: a JSON object, or `key=value` pairs separated by commas
    (`customer_id=4711, address.city=Oslo`: a dotted key names a nested one; a value is JSON if it reads as
    JSON, 4711 or true, and text otherwise). ValueError, one line, for anything else."""
    text = text.strip()
    if text.startswith("{"):
        return payload_document(text)
    document: dict[str, Any] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, equals, value = pair.partition("=")
        path = [part.strip() for part in key.split(".")]
        if not equals or not all(path):
            raise ValueError(f"payload search {pair[:40]!r} is not key=value: give customer_id=4711, or a JSON object")
        place = document
        for part in path[:-1]:
            inner = place.setdefault(part, {})
            if not isinstance(inner, dict):
                raise ValueError(f"payload search names {part!r} both as a value and as an object")
            place = inner
        place[path[-1]] = _value(value.strip())
    if not document:
        raise ValueError(f"payload search is empty: give customer_id=4711, or a JSON object like {_EXAMPLE}")
    return payload_document(json.dumps(document))


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class PayloadContains(ColumnElement[bool]):
    """`column` (a jobs table's payload) contains `document` (canonical JSON, from `payload_document`)."""

    type = Boolean()
    inherit_cache = False  # the document is not a bind parameter SQLAlchemy knows of: compile it each time

    def __init__(self, column: ColumnClause[Any] | ColumnElement[Any], document: str) -> None:
        self.column, self.document = column, document


@compiles(PayloadContains, "postgresql")
def _postgresql(element: PayloadContains, compiler: Any, **kw: Any) -> str:
    from sqlalchemy.dialects.postgresql import JSONB

    wanted = cast(bindparam(None, element.document, type_=String), JSONB)
    return str(compiler.process(element.column.op("@>")(wanted), **kw))


@compiles(PayloadContains)
def _other(element: PayloadContains, compiler: Any, **kw: Any) -> str:
    """SQLite: each (path, value) of the document, as its JSON functions see it."""
    conditions = _matches(element.column, "$", json.loads(element.document))
    return str(compiler.process(and_(true(), *conditions), **kw))


def _matches(column: Any, path: str, value: Any) -> list[ColumnElement[bool]]:
    if isinstance(value, dict):
        return [c for key, inner in value.items() for c in _matches(column, f'{path}."{key}"', inner)]
    if isinstance(value, list):
        return [_list_holds(column, path, item) for item in value]
    kind, sql_value = _sqlite_json(value)
    at = bindparam(None, path, type_=String)
    condition = func.json_type(column, at).in_(kind)
    return [condition if sql_value is None else and_(condition, func.json_extract(column, at) == sql_value)]


def _list_holds(column: Any, path: str, item: Any) -> ColumnElement[bool]:
    kind, sql_value = _sqlite_json(item)
    each = func.json_each(column, bindparam(None, path, type_=String)).table_valued("type", "value")
    where = each.c.type.in_(kind) if sql_value is None else and_(each.c.type.in_(kind), each.c.value == sql_value)
    is_list = func.json_type(column, bindparam(None, path, type_=String)) == "array"
    return and_(is_list, exists(select(literal_column("1")).select_from(each).where(where)))


def _sqlite_json(value: Any) -> tuple[list[str], Any]:
    """The JSON types SQLite's json_type gives such a value, and the SQL value json_extract gives (None when
    the type alone says it: true, false, null)."""
    if value is None:
        return ["null"], None
    if value is True:
        return ["true"], None
    if value is False:
        return ["false"], None
    if isinstance(value, int | float):
        return ["integer", "real"], value
    return ["text"], str(value)
