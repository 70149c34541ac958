"""Who works a pool's queue, and the line a result page adds when nobody does (cli/console/worker_presence.py)."""

from __future__ import annotations

import pytest

from cli.console.worker_presence import LocalWorker, Presence, idle_hint, presence

pytestmark = pytest.mark.unit


def test_a_local_run_decides_over_a_mapping_and_a_deployed_mapping_otherwise() -> None:
    local = LocalWorker("work them: jobstack local --until-empty")
    assert presence(None, local) is Presence.RUNNING_HERE
    local.stopped()
    assert presence("Enabled", local) is Presence.EXITED
    assert presence("Enabled", None) is Presence.ENABLED
    assert presence("Disabled", None) is Presence.PAUSED
    assert presence("Updating", None) is Presence.PAUSED
    assert presence(None, None) is Presence.UNKNOWN


def test_only_an_idle_queue_gets_a_line_and_it_names_what_to_run() -> None:
    local = LocalWorker("work them: jobstack local --until-empty")
    assert idle_hint("default", Presence.ENABLED, None, "prod") is None
    assert idle_hint("default", Presence.RUNNING_HERE, local, None) is None
    exited = idle_hint("default", Presence.EXITED, local, None)
    assert exited is not None and exited.endswith("work them: jobstack local --until-empty")
    assert "jobstack resume --env prod --pool video" in (idle_hint("video", Presence.PAUSED, None, "prod") or "")
    assert "jobstack local --until-empty" in (idle_hint("default", Presence.UNKNOWN, None, None) or "")
