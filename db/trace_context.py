"""The publisher's trace context, carried with a job so that the job's spans link to the request that
published it: the W3C `traceparent` of the current OpenTelemetry span, if the web app has one.

The OpenTelemetry API is optional (`pip install "jobstack-sqs[tracing]"`; your SDK and exporter do the
rest): without it, or outside a sampled span, a job carries nothing and publishing pays one cached check.
The value travels twice: as the message attribute `traceparent` and in the row, so a re-send (the sweeper,
`jobstack retry`, a released callback) carries the same link as the first send. On X-Ray, SQS's own
`AWSTraceHeader` system attribute links the message to the Lambda invocation without us.
"""

from __future__ import annotations

import functools
import re
from typing import Any

TRACEPARENT_ATTRIBUTE = "traceparent"
#: version 00: 2 + 1 + 32 + 1 + 16 + 1 + 2 characters (https://www.w3.org/TR/trace-context/#traceparent-header)
TRACEPARENT_LENGTH = 55
_TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


@functools.cache
def _propagator() -> Any:
    """W3C Trace Context's own propagator, not the global one: a web app whose global propagator is X-Ray's
    or B3 still gets a `traceparent` here. None when the OpenTelemetry API is not installed."""
    try:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        return None
    return TraceContextTextMapPropagator()


def current_traceparent() -> str | None:
    """The current span's `traceparent`, or None (no API, no current span, or a span that is not valid)."""
    propagator = _propagator()
    if propagator is None:
        return None
    carrier: dict[str, str] = {}
    propagator.inject(carrier)
    value = carrier.get(TRACEPARENT_ATTRIBUTE)
    return value if value is not None and valid_traceparent(value) else None


def valid_traceparent(value: object) -> bool:
    return isinstance(value, str) and _TRACEPARENT.match(value) is not None


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex-digit trace id of a `traceparent` (what log lines call correlation_id), or None."""
    return traceparent[3:35] if traceparent and valid_traceparent(traceparent) else None
