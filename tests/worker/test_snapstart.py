"""SnapStart's runtime hooks (worker/snapstart.py), as AWS documents them for Python: functions registered
with `snapshot_restore_py` run before the snapshot and after each restore
(https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html). No SnapStart runs
here, so the hooks are called as the runtime would call them."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import worker.handler
from db import DB, Queue, publish
from tests.support.esm import FakeLambdaContext, receive_event
from worker import snapstart

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_the_hooks_register_with_the_runtimes_module_and_do_nothing_without_it() -> None:
    registered: dict[str, Any] = {}
    hooks = SimpleNamespace(
        register_before_snapshot=lambda f: registered.setdefault("before", f),
        register_after_restore=lambda f: registered.setdefault("after", f),
    )
    assert snapstart.install(hooks)
    assert registered == {"before": snapstart.before_snapshot, "after": snapstart.after_restore}
    assert snapstart.install() is False  # no snapshot_restore_py outside Lambda


def test_before_the_snapshot_the_dialect_is_imported_and_nothing_is_connected() -> None:
    """A fresh interpreter stands for INIT: after the hook the PostgreSQL dialect is loaded (restored
    containers skip that import), yet no runtime, connection or secret exists to be frozen."""
    probe = (
        "import sys, worker.handler, worker.runtime as r, worker.snapstart as s; "
        "before = 'sqlalchemy.dialects.postgresql.psycopg' in sys.modules; s.before_snapshot(); "
        "print(before, 'sqlalchemy.dialects.postgresql.psycopg' in sys.modules, getattr(r._container, 'runtime', None))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "True", "None"]


def test_after_a_restore_the_runtime_and_the_random_state_are_made_again(
    pg_url: str, pg_db: DB, queue: Queue, dlq: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every container restored from one snapshot would share its connections (dead) and its random
    state (the same retry jitter in step); after the hook, neither is shared."""
    for name, value in {"DATABASE_URL": pg_url, "QUEUE_URL": queue.url, "DLQ_URL": dlq.url}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
    worker.handler.reset_runtime()
    publish(pg_db, "test-echo", {}, queue=queue)
    assert worker.handler.handler(receive_event(queue), FakeLambdaContext()) == {"batchItemFailures": []}
    before = worker.handler.get_runtime()
    pool: Any = before.db.engine.pool
    assert pool.checkedin() == 1  # the connection a snapshot would have frozen

    random.seed(1234)
    in_step = random.getstate()
    snapstart.after_restore()
    assert random.getstate() != in_step
    assert pool.checkedin() == 0  # closed, not carried into the restored container
    after = worker.handler.get_runtime()
    assert after is not before
    worker.handler.reset_runtime()
