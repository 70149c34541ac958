"""`python -m examples.flask_signup`: the example app on http://127.0.0.1:5000, on the database and queue the
environment names (DATABASE_URL, QUEUE_URL; AWS_ENDPOINT_URL for an emulator). See README.md beside it."""

from __future__ import annotations

import os
import sys

import boto3

from examples.flask_signup.app import create_app
from examples.welcome import missing_environment, serving_line
from jobstack import Queue  # type: ignore[import-not-found]


def main() -> int:
    missing = missing_environment("flask_signup")
    if missing is not None:
        print(missing, file=sys.stderr)
        return 2
    queue = Queue(boto3.client("sqs"), os.environ["QUEUE_URL"])
    app = create_app(os.environ["DATABASE_URL"], queue)
    port = int(os.environ.get("PORT", "5000"))
    print(serving_line(port), flush=True)
    app.run(host="127.0.0.1", port=port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
