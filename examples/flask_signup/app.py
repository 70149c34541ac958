"""A Flask app with SQLAlchemy: POST /signup creates the user and enqueues its welcome e-mail in one
transaction. The message is sent only after the commit (jobstack's Session hook); if the signup fails
(the e-mail is taken), the transaction rolls back and nothing is sent; a payload the job's schema refuses
is a 400 with the schema's one line, and nothing is written.

    pip install "/path/to/your/jobstack-checkout[web]" flask

Run it: examples/flask_signup/README.md.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from examples.welcome import JOB_TYPE, BadSignup, signup_email
from jobstack import InvalidPayload, PayloadTooLarge, Queue, enqueue, normalise_url  # type: ignore[import-not-found]

#: The example's own table: created at start-up when it is missing (SQLite or PostgreSQL).
USERS = Table(
    "users",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("email", String(254), unique=True, nullable=False),
)


def create_app(database_url: str, queue: Queue) -> Flask:
    app = Flask(__name__)
    # normalise_url: `postgresql://` (which SQLAlchemy would take for psycopg2) becomes psycopg 3's spelling.
    engine = create_engine(normalise_url(database_url))
    USERS.create(engine, checkfirst=True)
    app.extensions["engine"] = engine  # the app's one pool; dispose it when the app stops

    @app.post("/signup")
    def signup() -> Any:
        try:
            email = signup_email(request.get_data())
        except BadSignup as err:
            return jsonify(error=str(err)), 400
        with Session(engine) as session:
            try:
                user_id = session.execute(insert(USERS).values(email=email).returning(USERS.c.id)).scalar_one()
                job = enqueue(session, JOB_TYPE, {"email": email}, queue=queue)  # sent after the commit
                session.commit()
            except (InvalidPayload, PayloadTooLarge) as err:
                session.rollback()  # the user row goes too: a signup without its e-mail job is no signup
                return jsonify(error=str(err)), 400
            except IntegrityError:
                session.rollback()  # the user and the job go together: nothing is sent
                return jsonify(error=f"{email} is already signed up"), 409
        return jsonify(user=user_id, job=str(job.id)), 201

    return app
