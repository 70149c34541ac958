"""`django.task`: the worker runs a Django project's tasks (`@task` functions enqueued through
jobstack.django's backend) by their module path.

Django is set up once per container, at the first Django task (DJANGO_SETTINGS_MODULE, which the stack sets
from the settings' `django` entry), so a function with no Django tasks never imports it. Around each task the
database connections Django considers too old are closed, as Django's request cycle does at each request's
start and end: a container lives for hours, and a connection kept across invocations may have been dropped by
the server or the pooler in between.

A task's exception fails the attempt like any handler's, recorded as `module.Class: message` (the class's
full path, which `get_result` imports back as Django's `TaskError.exception_class`). A task calling
`sys.exit` fails its job instead of ending the worker's batch, as Django's immediate backend treats it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from db import DB, ConfigError
from db.job_types import DJANGO_TASK
from worker.contract import Env
from worker.registry import JobContext, job

_exception_types: dict[str, type[Exception]] = {}
_set_up: list[bool] = []


class TaskRaised(Exception):
    """A Django task's exception, under a class named by the original's full path (what the worker records)."""


@job(DJANGO_TASK)
def run_django_task(ctx: JobContext) -> Any:
    _setup_django(ctx.db)
    from django.db import close_old_connections

    close_old_connections()
    try:
        return _run(ctx)
    finally:
        close_old_connections()


def _run(ctx: JobContext) -> Any:
    from django.tasks import TaskContext
    from django.utils.json import normalize_json

    from db.django import task_named, task_result

    call = ctx.payload
    task = task_named(call["task"])
    args: list[Any] = list(call["args"])
    if task.takes_context:
        result = task_result(ctx.db, ctx.job_id)  # this attempt's row: RUNNING, its attempts so far
        args.insert(0, TaskContext(task_result=result))
    try:
        return normalize_json(task.call(*args, **call["kwargs"]))
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # SystemExit too: one task must not end the batch
        raise _recorded(err) from err


def _recorded(err: BaseException) -> Exception:
    cls = type(err)
    path = f"{cls.__module__}.{cls.__qualname__}"
    named = _exception_types.get(path)
    if named is None:
        named = _exception_types[path] = type(path, (TaskRaised,), {})
    return named(str(err))


def _setup_django(db: DB) -> None:
    if _set_up:
        return
    import django
    from django.apps import apps
    from django.conf import settings

    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise ConfigError(
            "a django.task job needs its Django project: set DJANGO_SETTINGS_MODULE (the stack sets it from the "
            "settings' django.settings_module)"
        )
    if not apps.ready:
        _hand_over_database(db)
        django.setup()
        keep_worker_logging()
    _set_up.append(True)


def keep_worker_logging() -> None:
    """A project's LOGGING is applied by `django.setup()` through dictConfig, whose `disable_existing_loggers`
    is true unless the dict says otherwise: it would silence the worker's own loggers (its outcome lines, its
    errors) for the rest of the container. They are turned back on; the levels and handlers the project or
    the Lambda runtime (which sets the root logger's level) chose are left as they are."""
    for name, logger in logging.root.manager.loggerDict.items():
        if name.split(".")[0] in ("jobstack", "worker", "db") and isinstance(logger, logging.Logger):
            logger.disabled = False


def _hand_over_database(db: DB) -> None:
    """The worker's database (a deployed worker reads it from its secret) for the project's settings
    (jobstack.django_database): Django's connection must reach the jobs' PostgreSQL, and the URL is never an
    environment variable. With the worker's TLS settings, so Django's connections are checked as its own."""
    from db.django_database import hand_over

    hand_over(
        db.engine.url.render_as_string(hide_password=False),
        sslmode=os.environ.get(Env.DATABASE_SSLMODE),
        sslrootcert=os.environ.get(Env.DATABASE_SSLROOTCERT),
    )
