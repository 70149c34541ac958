"""The Lambda entry point: `worker.handler.handler`.

Thin on purpose: it takes the container's runtime (worker/runtime.py: config errors surface there, as one
line, on the first invocation), checks once that every handler fits the function's timeout, and hands the
event to the batch. Importing this module imports no boto3.
"""

from __future__ import annotations

import weakref
from typing import Any

from worker import runtime
from worker.batch import process_batch
from worker.registry import check_fits
from worker.snapstart import install as install_snapstart_hooks

install_snapstart_hooks()  # a no-op outside Lambda's runtime; the hooks act only under SnapStart
_checked: weakref.WeakSet[runtime.Runtime] = weakref.WeakSet()  # runtimes whose handlers were checked


def get_runtime() -> runtime.Runtime:
    """The container's runtime (worker/runtime.py), its handlers checked against the function's timeout once."""
    container = runtime.current()
    if container not in _checked:
        if container.config.function_timeout is not None:
            check_fits(container.config.function_timeout)
        _checked.add(container)
    return container


#: Kept for callers of the entry module (the local runner, tests): the one reset is worker/runtime.py's.
reset_runtime = runtime.reset


def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    return process_batch(event, context, get_runtime())
