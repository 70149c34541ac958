"""The job both example apps enqueue: `welcome-email`, declared in db/job_types.py (the package the web app
installs as `jobstack` carries it, and the worker, whose handler is worker/jobs/welcome.py), and the one
rule both apps read a signup's body by: users copy examples, so a body that is not what the view expects
is a 400 with one line saying what to send, never a 500."""

from __future__ import annotations

import json
import os

JOB_TYPE = "welcome-email"
EXAMPLE_BODY = '{"email": "you@example.com"}'


class BadSignup(ValueError):
    """The request's body is not a signup; its message says what to send instead."""


def signup_email(body: bytes | str) -> str:
    """The e-mail a signup's JSON body names; BadSignup (one line) for anything else. An e-mail the job's
    schema refuses is the schema's to say (InvalidPayload, also a 400)."""
    try:
        document = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadSignup(f"the body is not JSON: send {EXAMPLE_BODY}") from None
    if not isinstance(document, dict):
        raise BadSignup(f"the body is JSON but not an object: send {EXAMPLE_BODY}")
    email = document.get("email", "")
    if not isinstance(email, str):
        raise BadSignup(f"email must be a string: send {EXAMPLE_BODY}")
    return email


#: What every example reads from its shell: the line `jobstack local` prints exports both.
NEEDED = ("DATABASE_URL", "QUEUE_URL")


def missing_environment(example: str) -> str | None:
    """The one line an example prints when its shell lacks what it needs (None: everything is set)."""
    missing = [name for name in NEEDED if not os.environ.get(name)]
    if not missing:
        return None
    return (
        f"error: set {' and '.join(missing)} (`jobstack local` prints an export line with them): see "
        f"examples/{example}/README.md"
    )


def serving_line(port: int | str) -> str:
    """What an example prints once it serves: where to send a signup (the examples' e2e test waits for it)."""
    return f'the signup view on http://127.0.0.1:{port}/signup: POST {{"email": ...}} (Ctrl-C stops it)'
