"""A Flask app with SQLAlchemy: POST /signup creates the user and enqueues its welcome e-mail in one
transaction. The message is sent only after the commit (jobstack's Session hook); if the signup fails
(the e-mail is taken), the transaction rolls back and nothing is sent.

    pip install "/path/to/your/jobstack-checkout[web]" flask
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from examples.welcome import JOB_TYPE
from jobstack import Queue, enqueue  # type: ignore[import-not-found]


def create_app(database_url: str, queue: Queue) -> Flask:
    app = Flask(__name__)
    engine = create_engine(database_url)
    app.extensions["engine"] = engine  # the app's one pool; dispose it when the app stops

    @app.post("/signup")
    def signup() -> Any:
        email = (request.get_json(silent=True) or {}).get("email", "")
        with Session(engine) as session:
            try:
                user_id = session.execute(
                    text("INSERT INTO users (email) VALUES (:email) RETURNING id"), {"email": email}
                ).scalar_one()
                job = enqueue(session, JOB_TYPE, {"email": email}, queue=queue)  # sent after the commit
                session.commit()
            except IntegrityError:
                session.rollback()  # the user and the job go together: nothing is sent
                return jsonify(error=f"{email} is already signed up"), 409
        return jsonify(user=user_id, job=str(job.id)), 201

    return app
