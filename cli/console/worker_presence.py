"""Who works a pool's queue, as far as the console can tell, and what to say when nobody does.

A retry or a redrive puts a message in the queue; whether the job then runs depends on a worker the console
does not run. A console left up after `jobstack local` exited once said "retried 1 job(s)" and the job
stayed pending for good. The console now names the worker's state for each pool (a deployed stack's event
source mapping, or the `jobstack local` run that started it) and, after an action that queued work, says
in one line when nothing will take it and how to start something that will.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum


class Presence(StrEnum):
    ENABLED = "enabled"  # a deployed pool's event source mapping polls the queue
    PAUSED = "paused"  # its mapping is disabled (`jobstack pause`) or changing state
    RUNNING_HERE = "running here"  # the `jobstack local` run that started this console works the queue
    EXITED = "exited"  # that run has finished: nothing works the queue any more
    UNKNOWN = "unknown"  # not a deployed stack and not a local run: the console cannot see a worker


@dataclass
class LocalWorker:
    """The `jobstack local` run a console was started by: running until it says it has stopped."""

    resume_hint: str  # what to run in another shell to work the queue again
    _running: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._running.set()

    def stopped(self) -> None:
        self._running.clear()

    @property
    def running(self) -> bool:
        return self._running.is_set()


def presence(mapping_state: str | None, local: LocalWorker | None) -> Presence:
    """One pool's worker: the local run's state when there is one, else the deployed mapping's."""
    if local is not None:
        return Presence.RUNNING_HERE if local.running else Presence.EXITED
    if mapping_state is None:
        return Presence.UNKNOWN
    # Lambda's mapping states: Creating, Enabling, Enabled, Disabling, Disabled, Updating, Deleting
    # (https://docs.aws.amazon.com/lambda/latest/api/API_EventSourceMappingConfiguration.html); only Enabled
    # polls the queue.
    return Presence.ENABLED if mapping_state == "Enabled" else Presence.PAUSED


def idle_hint(pool: str, state: Presence, local: LocalWorker | None, env: str | None) -> str | None:
    """The line a result page adds after queuing work for `pool` when no worker will take it; None when
    one will."""
    if state in (Presence.ENABLED, Presence.RUNNING_HERE):
        return None
    if state is Presence.EXITED and local is not None:
        return f"no worker runs on this queue now (jobstack local has exited): the jobs wait in it; {local.resume_hint}"
    if state is Presence.PAUSED:
        return (
            f"the worker of pool {pool} is paused: the jobs wait in its queue until "
            f"`jobstack resume --env {env} --pool {pool}`"
        )
    return (
        "this console sees no worker on this queue (not a deployed stack, not a jobstack local run): the jobs "
        "wait in it until one runs, e.g. `jobstack local --until-empty` with this console's database and queues"
    )
