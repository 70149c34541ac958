"""Django tasks for the backend's contract tests (tests/db/test_django_tasks.py), one for each behaviour
Django's docs state: a return value, an exception of each kind, a value that is not JSON, the context, an
async function. Module level, as Django requires, and imported only once Django is configured
(tests/support/django_settings.py): `@task` asks the backend to validate each at import."""

from __future__ import annotations

import sys

from django.tasks import TaskContext, task


@task
def noop(*args: object, **kwargs: object) -> None:
    return None


@task
def meaning_of_life() -> int:
    return 42


@task
def echo(*args: object, **kwargs: object) -> dict[str, object]:
    return {"args": list(args), "kwargs": kwargs}


@task
async def async_echo(value: str) -> str:
    return f"async {value}"


@task
def failing_value_error() -> None:
    raise ValueError("This Task failed due to ValueError")


@task
def failing_system_exit() -> None:
    sys.exit("This Task failed due to SystemExit")


@task
def complex_return_value() -> object:
    return {"not JSON": object()}


@task(takes_context=True)
def own_id(context: TaskContext) -> str:
    return context.task_result.id


@task(takes_context=True)
def fails_once(context: TaskContext) -> int:
    if context.attempt == 1:
        raise RuntimeError("first attempt fails")
    return context.attempt
