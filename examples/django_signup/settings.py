"""The example's Django settings, the web app's and the worker's alike
(`DJANGO_SETTINGS_MODULE=examples.django_signup.settings`): PostgreSQL from DATABASE_URL, and Django's Tasks
framework on jobstack (TASKS), so `send_welcome_email.enqueue(...)` writes a job in the request's transaction
and a Lambda worker (or `jobstack local`) runs it."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured
from sqlalchemy.engine import make_url

_url = os.environ.get("DATABASE_URL", "")
if not _url.startswith(("postgres://", "postgresql")):
    raise ImproperlyConfigured(
        "the Django example needs DATABASE_URL=postgresql://... (its tasks are written on Django's own psycopg "
        "connection): see examples/django_signup/README.md"
    )
_db = make_url(_url)

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.database, "USER": _db.username or "postgres", "PASSWORD": _db.password or "",
        "HOST": _db.host or "127.0.0.1", "PORT": str(_db.port or 5432),
    }
}  # fmt: skip
# The queue comes from QUEUE_URL (the stack's QueueUrl output; `jobstack local` prints it), or JOBSTACK_ROUTES
# for a stack with pools: nothing to set here.
TASKS = {"default": {"BACKEND": "jobstack.django.JobstackBackend"}}
ROOT_URLCONF = "examples.django_signup.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS: list[str] = []
USE_TZ = True
DEBUG = False
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
