"""Lambda's application log-level filter, as AWS documents it, to judge what reaches CloudWatch Logs.

https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html: with the JSON log
format, a line the function writes to stdout is kept when its level is at or above the function's
ApplicationLogLevel. The level is the JSON object's `"level"` key; a line that is not a JSON object, whose
`"level"` is missing or invalid, or that has no valid RFC 3339 `"timestamp"`, is INFO. Our own logger's
opinion of a line plays no part here.
"""

from __future__ import annotations

import json
from datetime import datetime

#: Lambda's application log levels, least severe first.
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


def level_of(line: str) -> str:
    try:
        doc = json.loads(line)
    except ValueError:
        return "INFO"
    if not isinstance(doc, dict):
        return "INFO"
    level = doc.get("level")
    if not isinstance(level, str) or level.upper() not in LEVELS or not _rfc3339(doc.get("timestamp")):
        return "INFO"
    return level.upper()


def kept(lines: list[str], threshold: str) -> list[str]:
    """The lines Lambda sends to CloudWatch Logs at this ApplicationLogLevel."""
    floor = LEVELS.index(threshold)
    return [line for line in lines if LEVELS.index(level_of(line)) >= floor]


def _rfc3339(value: object) -> bool:
    if not isinstance(value, str) or "T" not in value or not (value.endswith("Z") or value[-6] in "+-"):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
