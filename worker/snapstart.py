"""Lambda SnapStart hooks: what the snapshot may hold, and what every restored container must re-make.

With SnapStart (setting `snapstart`), Lambda runs INIT once per published version, snapshots the memory,
and starts containers from copies of it. https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html

- Before the snapshot: import what the first invocation would otherwise import (the PostgreSQL dialect
  loads with the first connection, docs/benchmarks.md), so restored containers skip it. Nothing with
  state is made here: no connection (it would be dead, and shared, after a restore) and no secret read
  (it would sit in every snapshot, and go stale with rotation).
- After a restore: forget any runtime (connections, the secret, the SQS client) and reseed `random`,
  whose state would otherwise be identical in every container restored from one snapshot: the retry
  jitter (worker/processing.py: retry_delay) exists to spread containers apart, not to move them in step.

`snapshot_restore_py` is part of Lambda's Python 3.12+ runtimes; elsewhere `install` does nothing.
"""

from __future__ import annotations

import importlib
import logging
import random
from typing import Any

from worker import runtime
from worker.observability import LOGGER_NAME

#: Imported before the snapshot: the first connection's dialect and driver machinery.
WARM_MODULES = ("psycopg", "sqlalchemy.dialects.postgresql.psycopg", "db.lifecycle", "worker.batch")
log = logging.getLogger(LOGGER_NAME)


def install(hooks: Any = None) -> bool:
    """Register the hooks with `hooks` (default: Lambda's `snapshot_restore_py`); False if there is none."""
    if hooks is None:
        try:
            hooks = importlib.import_module("snapshot_restore_py")
        except ImportError:
            return False
    hooks.register_before_snapshot(before_snapshot)
    hooks.register_after_restore(after_restore)
    return True


def before_snapshot() -> None:
    for name in WARM_MODULES:
        importlib.import_module(name)


def after_restore() -> None:
    runtime.reset()
    random.seed()  # from os.urandom, which differs per container
    log.info("restored from a SnapStart snapshot: runtime and random state re-made")
