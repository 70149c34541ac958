"""`python -m examples.django_signup`: the example view on http://127.0.0.1:8000/signup, with a minimal
Django configuration, on the PostgreSQL database and the queue the environment names (DATABASE_URL,
QUEUE_URL; AWS_ENDPOINT_URL for an emulator). See README.md beside it."""

from __future__ import annotations

import os
import sys
from typing import Any

import boto3
from sqlalchemy.engine import make_url

from jobstack import Queue  # type: ignore[import-not-found]

NEEDED = ("DATABASE_URL", "QUEUE_URL")


def django_settings(database_url: str) -> dict[str, Any]:
    """Django settings for the one view: PostgreSQL only (the job row is written on Django's own psycopg 3
    connection), no apps, no sessions."""
    url = make_url(database_url)
    return {
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": url.database, "USER": url.username or "postgres", "PASSWORD": url.password or "",
                "HOST": url.host or "127.0.0.1", "PORT": str(url.port or 5432),
            }
        },
        "ROOT_URLCONF": "examples.django_signup.urls", "ALLOWED_HOSTS": ["127.0.0.1", "localhost"],
        "INSTALLED_APPS": [], "USE_TZ": True, "DEBUG": False,
        "SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret"),
    }  # fmt: skip


def configure(database_url: str) -> None:
    import django
    from django.conf import settings

    settings.configure(**django_settings(database_url))
    django.setup()


def main() -> int:
    missing = [name for name in NEEDED if not os.environ.get(name)]
    if missing:
        print(f"error: set {' and '.join(missing)}: see examples/django_signup/README.md", file=sys.stderr)
        return 2
    if not os.environ["DATABASE_URL"].startswith(("postgres://", "postgresql")):
        print(
            "error: the Django example needs PostgreSQL (DATABASE_URL=postgresql://...): it enqueues on Django's "
            "own psycopg connection; the Flask example also runs on SQLite",
            file=sys.stderr,
        )
        return 2
    configure(os.environ["DATABASE_URL"])
    from django.core.management import execute_from_command_line
    from django.db import connection

    from examples.django_signup import views

    with connection.cursor() as cursor:  # the example's own table
        cursor.execute("CREATE TABLE IF NOT EXISTS users (id serial PRIMARY KEY, email text UNIQUE NOT NULL)")
    views.QUEUE = Queue(boto3.client("sqs"), os.environ["QUEUE_URL"])
    port = os.environ.get("PORT", "8000")
    print(f'the signup view on http://127.0.0.1:{port}/signup: POST {{"email": ...}} (Ctrl-C stops it)', flush=True)
    execute_from_command_line(["django", "runserver", "--noreload", f"127.0.0.1:{port}"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
