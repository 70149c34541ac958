"""The Lambda entry point: `worker.handler.handler`.

Thin on purpose: it takes the container's runtime (worker/runtime.py: config errors, and a handler that
could never fit the function's timeout, surface there as one line on the first invocation) and hands the
event to the batch. Importing this module imports no boto3.
"""

from __future__ import annotations

from typing import Any

from worker import runtime
from worker.batch import process_batch
from worker.snapstart import install as install_snapstart_hooks

install_snapstart_hooks()  # a no-op outside Lambda's runtime; the hooks act only under SnapStart

#: Kept for callers of the entry module (the local runner, tests): the runtime is worker/runtime.py's.
get_runtime = runtime.current
reset_runtime = runtime.reset


def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    return process_batch(event, context, get_runtime())
