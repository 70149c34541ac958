"""Structured logs: one JSON object per line.

In Lambda with the JSON log format the runtime's own handler formats the root logger's records (our
`extra` fields included); anywhere else `configure_logging` installs a JSON formatter, so local runs and
tests read the same fields. Metrics are worker/metrics.py.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from worker import redaction

LOGGER_NAME = "jobstack.worker"
_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS and not k.startswith("_")})
        if record.exc_text:  # filled, and redacted, by worker/redaction.py
            doc["exception"] = record.exc_text
        elif record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


#: Libraries whose DEBUG lines hold whole requests and responses (botocore logs GetSecretValue's body) or
#: SQL with its parameters: WARNING whatever the worker's level, because Lambda's runtime sets the *root*
#: logger to the function's application log level and these loggers inherit it.
QUIET_LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3", "psycopg", "sqlalchemy", "asyncio")


def configure_logging(level: int) -> logging.Logger:
    """Set the worker's log level, quiet the libraries, mask secrets at every root handler (see
    worker/redaction.py); install the JSON formatter unless Lambda's runtime already logs."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    redaction.install(root)
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    return logger


class BoundLogger(logging.LoggerAdapter[logging.Logger]):
    """Adds the job's fields to every record, keeping the caller's own `extra` too."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs
