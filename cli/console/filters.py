"""The job list's filter, read from a request's query (or a form): each field checked, a bad one a 400 with
its one line. The list (cli/console/pages.py) and the actions on what it shows (cli/console/acting.py)
read the same filter."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any
from uuid import UUID

from cli.argument_types import since_type
from cli.console.context import BadInput
from cli.console.sources import Sources
from db import JobStatus
from db.admin import JobFilter
from db.payload_search import search_document

_FILTER_FIELDS = ("status", "type", "pool", "from", "to", "key", "id", "group", "payload", "tenant")


def filter_from(args: Any, sources: Sources) -> tuple[JobFilter, dict[str, str]]:
    """The list's filter from query parameters, and the parameters that made it (for links)."""
    shown = {k: args[k].strip() for k in _FILTER_FIELDS if args.get(k, "").strip()}
    status = shown.get("status")
    if status is not None and status not in {s.value for s in JobStatus}:
        raise BadInput(f"status {status[:20]!r} is not one of: {', '.join(s.value for s in JobStatus)}")
    pool_filter = JobFilter()
    if "pool" in shown:
        try:
            pool_filter = sources.pool(shown["pool"]).filter
        except ValueError as err:
            raise BadInput(str(err)) from None
    try:
        which = JobFilter(
            status=JobStatus(status) if status else None,
            type=shown.get("type"),
            only_types=pool_filter.only_types,
            except_types=pool_filter.except_types,
            lane=pool_filter.lane,
            lanes=pool_filter.lanes,
            created_from=_time(shown.get("from"), "from"),
            created_to=_time(shown.get("to"), "to"),
            idempotency_key=shown.get("key"),
            id_prefix=shown.get("id"),
            workflow_id=UUID(shown["group"]) if "group" in shown else None,
            payload=search_document(shown["payload"]) if "payload" in shown else None,
            tenant=shown.get("tenant"),
        )
        which.clauses()  # an id prefix that is not hex is said now, as a 400
    except ValueError as err:
        raise BadInput(str(err)) from None
    return which, shown


def _time(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        return since_type(text)
    except argparse.ArgumentTypeError as err:
        raise BadInput(f"{name}: {err}") from None
