"""What the console's pages show, read from the database, SQS and Lambda.

Each AWS read of a pool is caught and shown as that pool's one-line reason, so one queue the credentials
cannot read (or an emulator without an API) leaves the rest of the page working.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cli import dlq as dead_letters
from cli import queue_state
from cli.commands.schedules import schedule_rows
from cli.console.worker_presence import LocalWorker, Presence, idle_hint, presence
from cli.queue_state import QueueCounts
from cli.target import Target, _aws_reason, stack_settings
from db import DB, oldest_pending, redact, utcnow
from db.admin import JobFilter
from stacks.pools import DEFAULT_POOL

#: How many dead letters the console reads per look (a peek holds them for the moment it reads them,
#: then makes them visible again, as `jobstack dlq peek` does).
PEEK_LIMIT = 100


@dataclass(frozen=True)
class PoolQueues:
    name: str
    queue_url: str | None
    dlq_url: str | None
    types: tuple[str, ...] | None  # the job types routed here (None: every type not routed elsewhere)
    except_types: tuple[str, ...]
    lane: str | None = None  # a priority lane: the jobs published with this priority, whatever their type
    lanes: tuple[str, ...] = ()  # the stack's lanes, whose jobs a type pool does not run

    @property
    def filter(self) -> JobFilter:
        return JobFilter(only_types=self.types, except_types=self.except_types, lane=self.lane, lanes=self.lanes)

    @property
    def queue_name(self) -> str | None:
        return self.queue_url.rsplit("/", 1)[-1] if self.queue_url else None

    @property
    def dlq_name(self) -> str | None:
        return self.dlq_url.rsplit("/", 1)[-1] if self.dlq_url else None


@dataclass(frozen=True)
class PoolView:
    queues: PoolQueues
    queue: QueueCounts | None
    dlq: QueueCounts | None
    worker: Presence  # who works the queue, as far as the console can tell
    reserved: int | None
    oldest_pending_seconds: float | None
    problem: str | None  # why SQS or Lambda could not be read


class Sources:
    """The console's view of one target. Thread-safe: the server answers requests on several threads,
    and boto3 clients are created once, under a lock (creating them is not thread-safe)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self.db: DB = target.db
        self.local_worker: LocalWorker | None = None  # set by the `jobstack local` run that starts the console

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.target.sqs if service == "sqs" else self.target.client(service)
            return self._clients[service]

    @property
    def label(self) -> str:
        """What the pages call the target: never its database URL."""
        if self.target.env:
            return self.target.stack_name
        return f"local {self.db.dialect} database"

    def pools(self) -> list[PoolQueues]:
        routes = self.target.routes
        if routes is None:
            return [
                PoolQueues(
                    self.target.pool or DEFAULT_POOL,
                    self.target.queue_url if self.target.has_queue else None,
                    self.target.dlq_url if self.target.has_dlq else None,
                    None,
                    (),
                )
            ]
        out = []
        lanes = {p: priority for priority, p in routes.priorities.items()}
        for pool in routes.queues:
            queue_url, dlq_url = self.target.output("QueueUrl", pool), self.target.output("DeadLetterQueueUrl", pool)
            if pool in lanes:
                out.append(PoolQueues(pool, queue_url, dlq_url, None, (), lane=lanes[pool]))
                continue
            routed = tuple(sorted(t for t, p in routes.types.items() if p == pool))
            elsewhere = tuple(sorted(t for t, p in routes.types.items() if p != pool))
            out.append(
                PoolQueues(
                    pool, queue_url, dlq_url, None if pool == DEFAULT_POOL else routed,
                    elsewhere if pool == DEFAULT_POOL else (), lanes=tuple(sorted(routes.priorities)),
                )
            )  # fmt: skip
        return out

    def pool(self, name: str) -> PoolQueues:
        for pool in self.pools():
            if pool.name == name:
                return pool
        raise ValueError(f"no pool {name[:60]!r}: its pools are {', '.join(p.name for p in self.pools())}")

    def pool_view(self, pool: PoolQueues) -> PoolView:
        created = oldest_pending(self.db, pool.filter)
        oldest = (utcnow() - created).total_seconds() if created is not None else None
        problem = None
        queue = dlq = None
        mapping = reserved = None
        try:
            sqs = self.client("sqs")
            queue = queue_state.queue_counts(sqs, pool.queue_url) if pool.queue_url else None
            dlq = queue_state.queue_counts(sqs, pool.dlq_url) if pool.dlq_url else None
            mapping = queue_state.worker_state(self.target, pool.name)
            reserved = queue_state.reserved_concurrency(self.target, pool.name)
        except Exception as err:
            problem = redact(_aws_reason(err))
        return PoolView(pool, queue, dlq, presence(mapping, self.local_worker), reserved, oldest, problem)

    def idle_hints(self) -> list[str]:
        """After an action that queued work: a line for each pool whose queue no worker takes from."""
        hints = []
        for pool in self.pools():
            try:
                mapping = queue_state.worker_state(self.target, pool.name)
            except Exception:  # noqa: S112 - the overview says why Lambda could not be read; no guess here
                continue
            hint = idle_hint(pool.name, presence(mapping, self.local_worker), self.local_worker, self.target.env)
            if hint is not None:
                hints.append(hint)
        return hints

    def dead_letters(self, pool: PoolQueues) -> list[tuple[dead_letters.DeadLetter, str]]:
        """Up to PEEK_LIMIT letters with their kinds, made visible again at once."""
        if not pool.dlq_url:
            return []
        sqs = self.client("sqs")
        letters = dead_letters.receive(sqs, pool.dlq_url, PEEK_LIMIT, hold_seconds=30)
        dead_letters.release(sqs, pool.dlq_url, letters)
        return list(zip(letters, dead_letters.kinds_of(letters, self.db), strict=True))

    def schedules(self, now: datetime) -> list[dict[str, Any]]:
        return schedule_rows(stack_settings(self.target.env or "dev"), now)

    def routes(self) -> dict[str, str]:
        """Job type -> pool, as the stack routes them (empty: every type to the default pool)."""
        routes = self.target.routes
        return dict(sorted(routes.types.items())) if routes else {}


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    delta = timedelta(seconds=int(seconds))
    if delta < timedelta(minutes=2):
        return f"{int(seconds)} s"
    if delta < timedelta(hours=2):
        return f"{int(seconds // 60)} min"
    if delta < timedelta(days=2):
        return f"{int(seconds // 3600)} h"
    return f"{delta.days} d"
