"""The Lambda entry point: `worker.handler.handler`.

Thin on purpose: it builds the container's runtime once (config errors surface here, as one line, on the
first invocation) and hands the event to `worker.processing`. Importing this module imports no boto3.

The runtime is kept per thread: Lambda runs one invocation at a time on one thread, so this is exactly
"one per container" there, while the local runner's N concurrent invocation threads each get their own
container (config, database connection, SQS client), as N Lambda containers would.
"""

from __future__ import annotations

import threading
from typing import Any

from worker.batch import process_batch
from worker.config import log_level_number
from worker.observability import configure_logging
from worker.registry import check_fits
from worker.runtime import Runtime
from worker.snapstart import install as install_snapstart_hooks

_container = threading.local()
install_snapstart_hooks()  # a no-op outside Lambda's runtime; the hooks act only under SnapStart


def get_runtime() -> Runtime:
    runtime: Runtime | None = getattr(_container, "runtime", None)
    if runtime is None:
        runtime = Runtime.from_environ()
        if runtime.config.function_timeout is not None:
            check_fits(runtime.config.function_timeout)
        configure_logging(log_level_number(runtime.config))
        _container.runtime = runtime
    return runtime


def reset_runtime() -> None:
    """Forget this thread's runtime (tests; the local runner when an invocation slot ends)."""
    runtime: Runtime | None = getattr(_container, "runtime", None)
    if runtime is not None:
        runtime.close()
    _container.runtime = None


def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    return process_batch(event, context, get_runtime())
