"""The example web apps (examples/): a signup creates the user and enqueues its welcome e-mail in one
transaction. A signup that fails (the e-mail is taken) sends nothing; one that commits sends exactly one
message. Flask with SQLAlchemy's Session, Django 6 with a task of Django's Tasks framework (jobstack.django)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from db import DB, Queue
from tests.support.django_settings import configure_django
from tests.support.esm import drain

pytestmark = pytest.mark.integration


@pytest.fixture
def users(pg_db: DB) -> Iterator[None]:
    with pg_db.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS users (id serial PRIMARY KEY, email text UNIQUE NOT NULL)"))
        conn.execute(text("TRUNCATE users"))
    yield
    with pg_db.begin() as conn:
        conn.execute(text("DROP TABLE users"))


#: What users send that is not a signup (reported: each was a 500 in one example or both), and the one line.
BAD_BODIES = [
    ('["x"]', 'the body is JSON but not an object: send {"email": "you@example.com"}'),
    ('"s"', 'the body is JSON but not an object: send {"email": "you@example.com"}'),
    ("5", 'the body is JSON but not an object: send {"email": "you@example.com"}'),
    ('{"email": "jo@exa', 'the body is not JSON: send {"email": "you@example.com"}'),
    ('{"email": 5}', 'email must be a string: send {"email": "you@example.com"}'),
]


def _state(pg_db: DB) -> tuple[list[str], list[str]]:
    with pg_db.begin() as conn:
        emails = [r[0] for r in conn.execute(text("SELECT email FROM users ORDER BY email"))]
        jobs = [r[0] for r in conn.execute(text("SELECT payload->>'email' FROM background_jobs ORDER BY 1"))]
    return emails, jobs


def _sent(queue: Queue) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in drain(queue)]


def test_flask_signup_commits_the_user_and_the_job_together(pg_url: str, pg_db: DB, queue: Queue, users: None) -> None:
    from examples.flask_signup.app import create_app

    app = create_app(make_url(pg_url).set(drivername="postgresql+psycopg").render_as_string(False), queue)
    client = app.test_client()
    try:
        _flask_signups(client, pg_db, queue)
    finally:
        app.extensions["engine"].dispose()


def _flask_signups(client: Any, pg_db: DB, queue: Queue) -> None:
    created = client.post("/signup", json={"email": "jo@example.com"})
    assert created.status_code == 201
    [message] = _sent(queue)
    assert message["type"] == "welcome-email" and message["payload"] == {"email": "jo@example.com"}
    assert message["jobId"] == created.get_json()["job"]

    taken = client.post("/signup", json={"email": "jo@example.com"})
    assert taken.status_code == 409
    assert _sent(queue) == [], "the failed signup rolled its job back: nothing sent"
    assert _state(pg_db) == (["jo@example.com"], ["jo@example.com"])

    refused = client.post("/signup", json={"email": "not-an-email"})
    assert refused.status_code == 400, "a payload the schema refuses is the caller's mistake, not a 500"
    for body, says in BAD_BODIES:
        bad = client.post("/signup", data=body, content_type="application/json")
        assert (bad.status_code, bad.get_json()["error"]) == (400, says), body
    [line] = refused.get_json()["error"].splitlines()
    assert line.startswith("invalid payload for job type 'welcome-email': email: ")
    assert _sent(queue) == [] and _state(pg_db) == (["jo@example.com"], ["jo@example.com"]), "nothing written"


def test_django_signup_enqueues_its_task_in_the_signups_transaction(
    pg_url: str, pg_db: DB, queue: Queue, users: None
) -> None:
    configure_django(pg_url)
    from django.db import connection
    from django.tasks import task_backends
    from django.test import Client
    from django.test.utils import override_settings

    options = {"QUEUE_URL": queue.url, "SQS_CLIENT": queue.client}
    with override_settings(TASKS={"default": {"BACKEND": "jobstack.django.JobstackBackend", "OPTIONS": options}}):
        client = Client()
        try:
            created = client.post("/signup", data={"email": "kim@example.com"}, content_type="application/json")
            assert created.status_code == 201, created.content
            [message] = _sent(queue)
            assert message["type"] == "django.task" and message["jobId"] == created.json()["task"]
            assert message["payload"]["task"] == "examples.django_signup.tasks.send_welcome_email"
            assert message["payload"]["args"] == ["kim@example.com"]
            status = client.get(f"/tasks/{created.json()['task']}")
            assert status.json() == {"status": "READY", "attempts": 0, "return_value": None}
            assert client.get("/tasks/00000000-0000-0000-0000-000000000000").status_code == 404

            taken = client.post("/signup", data={"email": "kim@example.com"}, content_type="application/json")
            assert taken.status_code == 409
            assert _sent(queue) == [], "the failed signup rolled its task back: nothing sent"
            assert _django_state(pg_db) == (["kim@example.com"], 1)

            refused = client.post("/signup", data={"email": "nope"}, content_type="application/json")
            assert refused.status_code == 400
            assert refused.json()["error"].startswith("invalid payload for job type 'welcome-email': email: ")
            for body, says in BAD_BODIES:
                bad = client.post("/signup", data=body, content_type="application/json")
                assert (bad.status_code, bad.json()["error"]) == (400, says), body
            assert _sent(queue) == [] and _django_state(pg_db) == (["kim@example.com"], 1), "nothing written"
        finally:
            task_backends["default"].close()
            connection.close()


def _django_state(pg_db: DB) -> tuple[list[str], int]:
    with pg_db.begin() as conn:
        emails = [r[0] for r in conn.execute(text("SELECT email FROM users ORDER BY email"))]
        tasks = conn.execute(text("SELECT count(*) FROM background_jobs WHERE type = 'django.task'")).scalar_one()
    return emails, int(tasks)
