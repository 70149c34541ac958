"""The command line's argument types: each turns one argument's text into its value, or says in one line
(argparse's usage error) what a valid one looks like."""

from __future__ import annotations

import argparse
import math
import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def since_type(value: str) -> datetime:
    """`30m`, `2h`, `7d` ago, or an ISO 8601 time (UTC if no zone)."""
    match = _DURATION.match(value.strip())
    if match:
        return datetime.now(UTC) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither a duration like 30m, 2h, 7d nor an ISO time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def at_type(value: str) -> datetime:
    """An ISO 8601 time, `Z` accepted; UTC if it names no zone."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time like 2026-12-01T09:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def duration_type(value: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w`: an age."""
    match = _DURATION.match(value.strip())
    if not match and value.strip().startswith("-"):
        raise argparse.ArgumentTypeError(f"{value!r}: a duration is never negative (30d, 12h or 90m)")
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration like 30d, 12h or 90m")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def uuid_type(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a job id (a UUID)") from None


def job_id_or_prefix(value: str) -> str:
    """A job's id, or its start (what a table cut on a narrow terminal shows): hex digits, dashes allowed."""
    digits = value.strip().replace("-", "").lower()
    if not digits or len(digits) > 32 or any(c not in "0123456789abcdef" for c in digits):
        raise argparse.ArgumentTypeError(f"{value!r} is not a job id or the start of one (hex digits: 3f2a9c1e)")
    return value.strip()


def milliseconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of milliseconds") from None
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"{value} must be zero or more milliseconds")
    return number


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def payload_search_type(value: str) -> str:
    """`customer_id=4711` pairs or a JSON object: the canonical search document (db/payload_search.py)."""
    from db.payload_search import search_document

    try:
        return search_document(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
