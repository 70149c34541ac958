"""Job handlers. Each module registers its handlers with `@job`; import it here so the worker loads it."""

from worker.jobs import django_tasks, echo, welcome

__all__ = ["django_tasks", "echo", "welcome"]
