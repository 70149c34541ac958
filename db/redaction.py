"""Passwords out of text: every message and log line that may quote a database URL or DSN passes here.

A URL's password would otherwise reach logs and error messages through a driver's exception text, a
repr, or a user's own paste. One function, used wherever such text leaves the process.
"""

from __future__ import annotations

import re

_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):(?P<pw>[^@\s]*)@")
_PASSWORD_IN_DSN = re.compile(r"(?P<head>password\s*=\s*)(?P<pw>'[^']*'|\S+)", re.IGNORECASE)


def redact(text: str) -> str:
    """Replace every password in URLs and libpq DSNs inside `text` with `***`."""
    text = _PASSWORD_IN_URL.sub(r"\g<head>:***@", text)
    return _PASSWORD_IN_DSN.sub(r"\g<head>***", text)
