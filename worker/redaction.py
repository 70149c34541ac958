"""The last line of defence for secrets in logs: a filter on every root handler that masks them.

The first lines are elsewhere: library loggers stay at WARNING whatever the worker's level (botocore logs
whole API responses at DEBUG, GetSecretValue's included), and our own messages never format a secret. But
Lambda's Python runtime sets the root logger to the function's application log level and formats every
propagated record itself, so anything a library, a handler or a traceback lets slip would reach
CloudWatch Logs. This filter sees each record before any handler formats it, and masks the passwords in
URLs and DSNs (`db.engine.redact`) and every secret value the worker has read (`remember_secret`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from db import redact

MASK = "***"
_secrets: set[str] = set()
_lock = threading.Lock()
_PLAIN = (str, int, float, bool, type(None))


def remember_secret(value: str | None) -> None:
    """Mask `value` wherever it appears in a log record from now on (short values are not: they would mask
    ordinary words; a password under 6 characters is masked by the URL rules only)."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    text = redact(text)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites the record in place: message (with its args), string extras and the exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose args do not fit its format: keep it, masked as it stands
            message = str(record.msg)
        record.msg, record.args = scrub(message), None
        for key, value in list(record.__dict__.items()):
            if key not in _SKIP and isinstance(value, str):
                record.__dict__[key] = scrub(value)
            elif key not in _SKIP and not isinstance(value, _PLAIN):
                record.__dict__[key] = _scrub_any(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


_SKIP = {"msg", "args", "exc_info", "exc_text", "levelname", "name", "pathname", "filename", "module", "funcName"}


def _scrub_any(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_any(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub_any(v) for v in value)
    return value


def install(root: logging.Logger) -> None:
    """Put the filter on every handler of `root` (Lambda's runtime handler included), once each."""
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
