"""Django's Tasks framework (Django 6) on jobstack: a task backend whose tasks run on Lambda.

    TASKS = {"default": {"BACKEND": "jobstack.django.JobstackBackend"}}

`my_task.enqueue(...)` writes a `django.task` job in the request's own transaction, on Django's own connection
(the outbox), and sends its message when that transaction commits: a task enqueued in a transaction that rolls
back never runs, and no `transaction.on_commit` is needed in your code. Outside a transaction (autocommit) the
row commits at once and the message follows. The worker runs the task by its module path
(worker/jobs/django_tasks.py); `get_result` reads the row and its attempts, from any process.

What Django's contract asks and how it is met here:
- `run_after` (supports_defer): the job's `run_at` (SQS's delay within 15 minutes, the sweeper beyond).
- `priority` (supports_priority): SQS keeps no order within a queue, so a priority is a lane (a pool of the
  stack with its own queue and workers). OPTIONS["PRIORITY_LANES"] maps lanes to thresholds: {"high": 50,
  "bulk": -50} sends priority >= 50 to "high" and <= -50 to "bulk" (the most extreme threshold a priority
  reaches wins; the rest run in the type's pool). Without lanes a priority other than 0 is refused: it could
  not make a task run sooner.
- `queue_name`: a pool of the stack. "default" is the pool `django.task` is routed to; another name is the
  pool of that name in JOBSTACK_ROUTES (QUEUES lists the names a task may use, as in every backend).
- `takes_context`: the task gets a TaskContext whose `attempt` is the job's attempt.
- a tenant (`tenant=` elsewhere): Django's Task has no field for one, so `with tenant("acme"):` around the
  `enqueue` calls (a request's middleware, say) gives their jobs that tenant, with its limits and quota.
- `get_result`: status (pending, scheduled and waiting are READY; processing RUNNING; completed SUCCESSFUL;
  failed and cancelled FAILED), times, the return value, one error per failed attempt (the exception's class
  path and its one line: the full traceback is in the worker's log, found by the attempt's request id, which
  is the attempt's entry in `worker_ids`).

PostgreSQL only: the row is written on Django's own psycopg 3 connection so it commits with your writes.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.tasks import TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import Task, TaskError
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils.json import normalize_json
from django.utils.module_loading import import_string

from .after_commit import send
from .attempts import Attempt, history
from .destinations import Destination, Queue
from .engine import DB, create_db
from .exceptions import InvalidPayload, JobstackError, PayloadTooLarge, TenantQuotaExceeded
from .job_types import DJANGO_TASK
from .models import Job, JobStatus
from .outbox import enqueue
from .routes import ROUTES_VARIABLE, Router

__all__ = ["DJANGO_TASK", "JobstackBackend", "task_named", "task_result", "tenant"]

log = logging.getLogger("jobstack.django")

_READY = (JobStatus.PENDING, JobStatus.SCHEDULED, JobStatus.WAITING)
#: The tenant the tasks enqueued in this context are for (`tenant`): per thread and per async task, as a
#: request is.
_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar("jobstack_django_tenant", default=None)


@contextlib.contextmanager
def tenant(name: str | None) -> Iterator[None]:
    """The tasks enqueued inside are for tenant `name` (its limits, its pending quota, SQS's fair queueing by
    MessageGroupId); None: for no tenant. A name SQS would refuse is InvalidTask at the enqueue, nothing written."""
    token = _tenant.set(name)
    try:
        yield
    finally:
        _tenant.reset(token)


_FAILED = (JobStatus.FAILED, JobStatus.CANCELLED)


class JobstackBackend(BaseTaskBackend):
    """OPTIONS (all optional): DATABASE, the Django database alias the jobs live in ("default"); QUEUE_URL, the
    stack's queue (else $QUEUE_URL), or JOBSTACK_ROUTES' map of a stack with pools (else $JOBSTACK_ROUTES);
    PRIORITY_LANES, {lane: threshold}; SQS_CLIENT, a boto3 SQS client (else boto3's default)."""

    supports_defer = True
    supports_async_task = True
    supports_get_result = True

    def __init__(self, alias: str, params: Mapping[str, Any]) -> None:
        super().__init__(alias, params)
        self.database = str(self.options.get("DATABASE", "default"))
        self.lanes = _lanes(alias, self.options.get("PRIORITY_LANES", {}))

    @property
    def supports_priority(self) -> bool:
        return bool(self.lanes)

    # -- Django's contract ---------------------------------------------------------------------------------

    def validate_task(self, task: Task) -> None:
        if not self.lanes and task.priority != 0 and isinstance(task.priority, int):
            raise InvalidTask(
                f"priority {task.priority} cannot make a task run sooner on backend {self.alias!r}: SQS keeps no "
                "order within a queue; name priority lanes (OPTIONS['PRIORITY_LANES'] = {'high': 50}), or leave it 0"
            )
        super().validate_task(task)

    def enqueue(self, task: Task, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TaskResult:
        self.validate_task(task)
        payload = _call_of(task, args, kwargs)
        connection = connections[self.database]
        if connection.vendor != "postgresql":
            raise ImproperlyConfigured(
                f"TASKS[{self.alias!r}]: jobstack.django writes the job on Django's own connection, which must be "
                f"PostgreSQL (DATABASES[{self.database!r}] is {connection.vendor}): point OPTIONS['DATABASE'] at one"
            )
        queue = self._queue_for(task)
        connection.ensure_connection()
        try:
            job = enqueue(
                connection.connection, DJANGO_TASK, payload, queue=queue, run_at=task.run_after,
                priority=self._lane(task.priority), tenant=_tenant.get(),
            )  # fmt: skip
        except (InvalidPayload, PayloadTooLarge, TenantQuotaExceeded) as err:
            raise InvalidTask(str(err)) from None
        except ValueError as err:  # a tenant SQS would refuse: said before anything is written
            raise InvalidTask(f"task {task.module_path}: {err}") from None
        # Outside a transaction (autocommit) this runs now, the row committed; inside, after the commit, and
        # never after a rollback. A failed send is logged: the row stays unsent and the sweeper sends it.
        transaction.on_commit(lambda: self._send(job, queue), using=self.database, robust=True)
        result = _result_of(task, job, [], self.alias)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        try:
            job_id = uuid.UUID(str(result_id))
        except ValueError:
            raise TaskResultDoesNotExist(result_id) from None
        found = task_result(self._db, job_id)
        if found is None:
            raise TaskResultDoesNotExist(result_id)
        return found

    def close(self) -> None:
        """Close the process's pool for this backend's database (results and send marks; the next use opens it
        again). Django's own connection is Django's to close."""
        with _pools_lock:
            db = _pools.pop(_url_of(connections[self.database].settings_dict), None)
        if db is not None:
            db.dispose()

    # -- where a task goes ---------------------------------------------------------------------------------

    def _lane(self, priority: int) -> str | None:
        """The lane a priority runs in: the most extreme threshold it reaches (None: the type's pool)."""
        reached = [
            (abs(threshold), lane)
            for lane, threshold in self.lanes.items()
            if (threshold > 0 and priority >= threshold) or (threshold < 0 and priority <= threshold)
        ]
        return max(reached)[1] if reached else None

    def _queue_for(self, task: Task) -> Destination:
        destination = self._destination
        if task.queue_name == "default":
            return destination
        if isinstance(destination, Router):
            url = destination.routes.queues.get(task.queue_name)
            if url is not None:
                return Queue(destination.client, url, destination.max_message_bytes)
            raise InvalidTask(
                f"queue {task.queue_name!r} is not a pool of {destination.routes.stack or 'the stack'} "
                f"(its pools: {', '.join(sorted(destination.routes.queues))}): name one, or add the pool"
            )
        raise InvalidTask(
            f"queue {task.queue_name!r} needs a stack with pools: set JOBSTACK_ROUTES (`jobstack routes --env ENV`); "
            "with one queue every task runs in 'default'"
        )

    @cached_property
    def _destination(self) -> Destination:
        client = self.options.get("SQS_CLIENT")
        routes = self.options.get("JOBSTACK_ROUTES") or os.environ.get(ROUTES_VARIABLE)
        if routes:
            return Router.from_env({ROUTES_VARIABLE: routes}, client=client)
        url = self.options.get("QUEUE_URL") or os.environ.get("QUEUE_URL")
        if not url:
            raise ImproperlyConfigured(
                f"TASKS[{self.alias!r}]: no queue: set OPTIONS['QUEUE_URL'] or $QUEUE_URL (the stack's QueueUrl "
                f"output), or {ROUTES_VARIABLE} for a stack with pools"
            )
        if client is None:
            import boto3

            client = boto3.client("sqs")
        return Queue(client, url)

    @property
    def _db(self) -> DB:
        """The jobs' database for reading results and marking sends: Django's DATABASES entry as a URL, through
        one small pool per process. Django makes a backend per thread (and per async context): a pool each
        would multiply a web app's connections by its threads."""
        return _shared_db(_url_of(connections[self.database].settings_dict))

    def _send(self, job: Job, queue: Destination) -> None:
        try:
            send([job], queue=queue, db=self._db)
        except JobstackError as err:
            log.warning("task %s not sent yet (the sweeper sends it): %s", job.id, err)


_pools: dict[str, DB] = {}
_pools_lock = threading.Lock()


def _shared_db(url: str) -> DB:
    with _pools_lock:
        db = _pools.get(url)
        if db is None:
            db = _pools[url] = create_db(url, pool_size=2, max_overflow=8)
        return db


# -- the row as Django's TaskResult (the web app's get_result and the worker's TaskContext) ----------------


def task_result(db: DB, job_id: uuid.UUID) -> TaskResult | None:
    """A `django.task` job as Django's TaskResult (None: no such job, or not a Django task)."""
    from .admin import get_job

    job = get_job(db, job_id)
    if job is None or job.type != DJANGO_TASK:
        return None
    call = job.payload
    task = task_named(call["task"]).using(
        priority=call.get("priority", 0), queue_name=call.get("queue_name", "default"),
        backend=call.get("backend", "default"), run_after=job.run_at,
    )  # fmt: skip
    return _result_of(task, job, history(db, job), call.get("backend", "default"))


def _result_of(task: Task, job: Job, attempts: list[Attempt], backend: str) -> TaskResult:
    status = (
        TaskResultStatus.SUCCESSFUL
        if job.status is JobStatus.COMPLETED
        else TaskResultStatus.FAILED
        if job.status in _FAILED
        else TaskResultStatus.RUNNING
        if job.status is JobStatus.PROCESSING
        else TaskResultStatus.READY
    )
    finished = (
        job.completed_at or job.updated_at if status in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED) else None
    )
    result = TaskResult(
        task=task,
        id=str(job.id),
        status=status,
        enqueued_at=job.created_at,
        started_at=attempts[0].started_at if attempts else None,
        last_attempted_at=attempts[-1].started_at if attempts else None,
        finished_at=finished,
        args=list(job.payload.get("args", [])),
        kwargs=dict(job.payload.get("kwargs", {})),
        backend=backend,
        errors=[_error_of(a.error) for a in attempts if a.error],
        worker_ids=[a.request_id or f"attempt-{a.attempt}" for a in attempts],
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", job.result)
    return result


def _error_of(text: str) -> TaskError:
    path, _, message = text.partition(": ")
    if not path.replace(".", "").replace("_", "").isalnum():  # not a task's exception: the worker's own line
        path, message = "jobstack.JobstackError", text
    elif "." not in path:
        path = f"builtins.{path}"
    name = path.rsplit(".", 1)[-1]
    return TaskError(exception_class_path=path, traceback=f"{name}: {message}\n" if message else f"{name}\n")


def task_named(path: str) -> Task:
    """The Task a module path names (its module imported), or InvalidTask in one line."""
    try:
        found = import_string(path)
    except ImportError as err:
        raise InvalidTask(
            f"task {path!r} cannot be imported here ({err}): deploy the same code as the web app"
        ) from None
    if not isinstance(found, Task):
        raise InvalidTask(f"{path!r} is not a Django task (decorate the function with @task)")
    return found


def _call_of(task: Task, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The job's payload; InvalidTask in one line for arguments that are not JSON (they cross a queue)."""
    try:
        normalized_args, normalized_kwargs = normalize_json(list(args)), normalize_json(dict(kwargs))
        json.dumps([normalized_args, normalized_kwargs], allow_nan=False)
    except (TypeError, ValueError) as err:
        raise InvalidTask(f"task {task.module_path}: its arguments must be JSON ({err})") from None
    task_named(task.module_path)  # the worker imports it by this path: refuse now what it could not
    return {
        "task": task.module_path, "args": normalized_args, "kwargs": normalized_kwargs, "backend": task.backend,
        "queue_name": task.queue_name, "priority": task.priority, "takes_context": task.takes_context,
    }  # fmt: skip


def _lanes(alias: str, value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v != 0 and -100 <= v <= 100
        for k, v in value.items()
    ):
        raise ImproperlyConfigured(
            f"TASKS[{alias!r}]['OPTIONS']['PRIORITY_LANES'] must map lane names to thresholds from -100 to 100, "
            f"not 0 (e.g. {{'high': 50}}), got {value!r}"
        )
    return dict(value)


def _url_of(settings: Mapping[str, Any]) -> str:
    from sqlalchemy.engine import URL

    return URL.create(
        "postgresql+psycopg", username=settings.get("USER") or None, password=settings.get("PASSWORD") or None,
        host=settings.get("HOST") or None, port=int(settings["PORT"]) if settings.get("PORT") else None,
        database=settings.get("NAME") or None,
    ).render_as_string(hide_password=False)  # fmt: skip
