"""Which queue each job type goes to, when a stack has several worker pools (stacks/pools.py).

The stack writes the map as its `Routes` output (`jobstack routes --env prod` prints it as a line to export),
and a web app configures publishing with one line:

    queue = Router.from_env()          # reads JOBSTACK_ROUTES; boto3's default SQS client
    publish(db, "video.transcode", {...}, queue=queue)

`publish`, `publish_many`, `enqueue` + `send` and `resend` take a `Router` wherever they take a `Queue`:
each job goes to its type's pool, or, published with `priority="high"`, to the pool whose `priority` is
"high" (a priority lane: its own queue and workers, whatever the job's type; stacks/pools.py says what it
guarantees). The map names every priority any environment of the project has a lane for (with "" where
this one has none: such jobs run in their type's pool), so a priority it does not name is UnknownPriority
before anything is written, in dev as in prod; a map with no priorities at all (a project without lanes,
or a map from before lanes) routes by type alone and checks only the priority's form. A type
no pool lists goes to the `default` pool; a map without one, or a type whose pool has no queue in the map
(an old JOBSTACK_ROUTES after a pool was added), is UnroutableJob before anything is written.

The map is JSON: {"stack": "JobsStack-prod", "queues": {POOL: URL, ...}, "types": {TYPE: POOL, ...},
"priorities": {PRIORITY: POOL, ...}} (`priorities` only when the stack has lanes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .destinations import Queue
from .exceptions import ConfigError, UnknownPriority, UnroutableJob
from .sqs_limits import SQS_MAX_MESSAGE_BYTES

ROUTES_VARIABLE = "JOBSTACK_ROUTES"
DEFAULT_POOL = "default"  # stacks/pools.py's too: the stack imports nothing from db/, so it names it itself


@dataclass(frozen=True)
class Routes:
    queues: Mapping[str, str]  # pool -> queue URL
    types: Mapping[str, str] = field(default_factory=dict)  # job type -> pool (unlisted: the default pool)
    stack: str = ""
    priorities: Mapping[str, str] = field(default_factory=dict)  # priority -> its lane's pool

    @classmethod
    def from_json(cls, text: str, *, source: str = ROUTES_VARIABLE) -> Routes:
        """Parse and check the map, or raise ConfigError naming `source` and what is wrong with it."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{source} is not JSON ({err.msg}): copy it from `jobstack routes --env ENV`") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{source} must be a JSON object with queues and types: copy it from `jobstack routes`")
        queues, types, stack = data.get("queues"), data.get("types", {}), data.get("stack", "")
        priorities = data.get("priorities", {})
        if (
            not isinstance(queues, dict)
            or not queues
            or not all(
                isinstance(k, str) and isinstance(v, str) and v.startswith(("https://", "http://"))
                for k, v in queues.items()
            )
        ):
            raise ConfigError(f"{source}: queues must map each pool's name to its queue URL")
        if not isinstance(types, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in types.items()):
            raise ConfigError(f"{source}: types must map job type names to pool names")
        if not isinstance(priorities, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in priorities.items()
        ):
            raise ConfigError(f'{source}: priorities must map priority names to pool names (or "": no lane here)')
        for key, named in (("types", types), ("priorities", priorities)):
            missing = sorted({pool for pool in named.values() if pool and pool not in queues})
            if missing:
                raise ConfigError(f"{source}: {key} name pool {missing[0]!r}, which has no queue in it")
        return cls(queues=dict(queues), types=dict(types), stack=str(stack), priorities=dict(priorities))

    def to_json(self) -> str:
        document: dict[str, Any] = {"stack": self.stack, "queues": dict(self.queues), "types": dict(self.types)}
        if self.priorities:
            document["priorities"] = dict(self.priorities)
        return json.dumps(document)

    def pool_for(self, job_type: str, priority: str | None = None) -> str:
        """The pool a job of `job_type` published with `priority` runs in: the priority's lane, else the
        type's pool (a map without lanes ignores the priority: see the module's docstring)."""
        pool = self.types.get(job_type, DEFAULT_POOL)
        if pool not in self.queues:
            raise UnroutableJob(job_type, pool, self.stack, sorted(self.queues))
        if priority is None or not self.priorities:
            return pool
        lane = self.priorities.get(priority)
        if lane is None:
            raise UnknownPriority(
                job_type, priority, f"{self.stack or 'the stack'} knows priorities "
                f"{', '.join(sorted(self.priorities))}: name one, or publish without priority (the type's own pool)"
            )  # fmt: skip
        if self.queues[pool].endswith(".fifo"):
            raise UnknownPriority(
                job_type, priority, f"it runs in FIFO pool {pool!r}, whose jobs keep their ordering key's order: "
                "publish it without priority"
            )  # fmt: skip
        return lane or pool  # "": a lane in another environment, none here: the type's own pool

    def url_for(self, job_type: str, priority: str | None = None) -> str:
        return self.queues[self.pool_for(job_type, priority)]


@dataclass(frozen=True)
class Router:
    """A publishing destination over several queues: each job type to its pool's queue."""

    client: Any
    routes: Routes
    max_message_bytes: int = SQS_MAX_MESSAGE_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, client: Any = None) -> Router:
        """The router of `$JOBSTACK_ROUTES`; `client` defaults to boto3's SQS client for the environment."""
        environ = os.environ if environ is None else environ
        text = environ.get(ROUTES_VARIABLE, "").strip()
        if not text:
            raise ConfigError(
                f"{ROUTES_VARIABLE} is not set: export the line `jobstack routes --env ENV` prints (the stack's "
                "Routes output)"
            )
        routes = Routes.from_json(text)
        if client is None:
            import boto3

            client = boto3.client("sqs")
        return cls(client=client, routes=routes)

    def queue_for(self, job_type: str, priority: str | None = None) -> Queue:
        return Queue(self.client, self.routes.url_for(job_type, priority), self.max_message_bytes)
