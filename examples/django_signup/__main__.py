"""`python -m examples.django_signup`: the example's views on http://127.0.0.1:8000, on the PostgreSQL
database and the queue the environment names (DATABASE_URL, QUEUE_URL; AWS_ENDPOINT_URL for an emulator),
with the example's settings (examples/django_signup/settings.py). See README.md beside it."""

from __future__ import annotations

import os
import sys

from examples.welcome import missing_environment, serving_line

SETTINGS = "examples.django_signup.settings"


def main() -> int:
    missing = missing_environment("django_signup")
    if missing:
        print(missing, file=sys.stderr)
        return 2
    if not os.environ["DATABASE_URL"].startswith(("postgres://", "postgresql")):
        print(
            "error: the Django example needs PostgreSQL (DATABASE_URL=postgresql://...): its tasks are written on "
            "Django's own psycopg connection; the Flask and FastAPI examples also run on SQLite",
            file=sys.stderr,
        )
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    import django
    from django.core.management import execute_from_command_line
    from django.db import connection

    django.setup()
    with connection.cursor() as cursor:  # the example's own table
        cursor.execute("CREATE TABLE IF NOT EXISTS users (id serial PRIMARY KEY, email text UNIQUE NOT NULL)")
    port = os.environ.get("PORT", "8000")
    print(serving_line(port), flush=True)
    execute_from_command_line(["django", "runserver", "--noreload", f"127.0.0.1:{port}"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
