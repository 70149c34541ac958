"""What every part of the console reads while it answers a request: its sources, its guard and whether it is
read-only (one `Console`, kept on the Flask app by `create_app`), and the one-line refusal of a query it
cannot use (`BadInput`, a 400 page)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from flask import current_app

from cli.console.guard import Guard
from cli.console.sources import Sources

EXTENSION = "jobstack.console"


class BadInput(ValueError):
    """A query parameter the console cannot use: a 400 page with the one line."""


def uuid_of(text: str, what: str) -> UUID:
    """`text` as a UUID, or a 400 naming `what` it should have been ("a job id")."""
    try:
        return UUID(text)
    except ValueError:
        raise BadInput(f"{text[:40]!r} is not {what} (a UUID)") from None


@dataclass(frozen=True)
class Console:
    sources: Sources
    guard: Guard
    read_only: bool
    refresh_seconds: float


def console() -> Console:
    """The console of the app answering this request."""
    found: Console = current_app.extensions[EXTENSION]
    return found
