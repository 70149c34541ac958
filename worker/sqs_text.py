"""Text as SQS accepts it in message attributes.

SQS applies the message body's character rules to String attribute values too: only #x9, #xA, #xD,
#x20-#xD7FF, #xE000-#xFFFD and #x10000-#x10FFFF are allowed, and anything else rejects the whole
SendMessage ("Invalid characters found", https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html).
A dead-letter reason quotes a handler's exception and a message's own fields, so it can hold any of
them: a refused DLQ send would loop the message until SQS's redrive dropped the reason.
"""

from __future__ import annotations

import functools
import re

REPLACEMENT = "\ufffd"


@functools.cache
def _not_allowed() -> re.Pattern[str]:
    """Compiled on first use (a dead letter), not at import: this character class costs 3.5 ms to compile."""
    return re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def sqs_safe(text: str, max_bytes: int) -> str:
    """`text` with every character SQS refuses replaced by U+FFFD, cut to at most `max_bytes` of UTF-8
    (never in the middle of a character), with "…" marking a cut."""
    clean = _not_allowed().sub(REPLACEMENT, text)
    encoded = clean.encode("utf-8")
    if len(encoded) <= max_bytes:
        return clean
    marker = "…"
    budget = max(max_bytes - len(marker.encode("utf-8")), 0)
    return encoded[:budget].decode("utf-8", errors="ignore") + marker
