"""The example's Django settings, the web app's and the worker's alike
(`DJANGO_SETTINGS_MODULE=examples.django_signup.settings`): the jobs' PostgreSQL, and Django's Tasks
framework on jobstack (TASKS), so `send_welcome_email.enqueue(...)` writes a job in the request's transaction
and a Lambda worker (or `jobstack local`) runs it."""

from __future__ import annotations

import os

from jobstack.django_database import database  # type: ignore[import-not-found]

# The jobs' PostgreSQL: $DATABASE_URL for the web app and `jobstack local`; a deployed worker hands over the
# one it read from its secret (never an environment variable there).
DATABASES = {"default": database()}
# The queue comes from QUEUE_URL (the stack's QueueUrl output; `jobstack local` prints it), or JOBSTACK_ROUTES
# for a stack with pools: nothing to set here.
TASKS = {"default": {"BACKEND": "jobstack.django.JobstackBackend"}}
ROOT_URLCONF = "examples.django_signup.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS: list[str] = []
USE_TZ = True
DEBUG = False
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
