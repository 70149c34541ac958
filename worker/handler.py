"""The Lambda entry point: `worker.handler.handler`.

Thin on purpose: it builds the container's runtime once (config errors surface here, as one line, on the
first invocation) and hands the event to `worker.processing`. Importing this module imports no boto3.
"""

from __future__ import annotations

from typing import Any

from worker.config import log_level_number
from worker.observability import configure_logging
from worker.processing import process_batch
from worker.runtime import Runtime

_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        runtime = Runtime.from_environ()
        configure_logging(log_level_number(runtime.config))
        _runtime = runtime
    return _runtime


def reset_runtime() -> None:
    """Forget the container's runtime (tests; a local runner switching environments)."""
    global _runtime
    if _runtime is not None:
        _runtime.close()
    _runtime = None


def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    return process_batch(event, context, get_runtime())
