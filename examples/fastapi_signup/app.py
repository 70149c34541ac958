"""A FastAPI app on SQLAlchemy's AsyncSession: POST /signup creates the user and enqueues its welcome e-mail in
one transaction, without blocking the event loop. `await session.commit()` sends the message once the
transaction has committed (SQS called on a thread, awaited); if the signup fails (the e-mail is taken), the
transaction rolls back and nothing is sent; a payload the job's schema refuses is a 400 with the schema's one
line, and nothing is written.

    pip install "/path/to/your/jobstack-checkout[web]" fastapi uvicorn aiosqlite   # aiosqlite: SQLite only

Run it: examples/fastapi_signup/README.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from examples.welcome import JOB_TYPE, BadSignup, signup_email
from jobstack import (  # type: ignore[import-not-found]
    InvalidPayload,
    PayloadTooLarge,
    Queue,
    async_url,
    enqueue_async,
)

#: The example's own table: created at start-up when it is missing (SQLite or PostgreSQL).
USERS = Table(
    "users",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("email", String(254), unique=True, nullable=False),
)


def create_app(database_url: str, queue: Queue) -> FastAPI:
    # async_url: psycopg's async mode for PostgreSQL (`postgresql://` as users paste it), aiosqlite for SQLite.
    engine = create_async_engine(async_url(database_url))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            await conn.run_sync(USERS.create, checkfirst=True)
        yield
        await engine.dispose()  # the app's one pool

    app = FastAPI(lifespan=lifespan)

    @app.post("/signup")
    async def signup(request: Request) -> JSONResponse:
        try:
            email = signup_email(await request.body())
        except BadSignup as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        async with AsyncSession(engine) as session:
            try:
                inserted = await session.execute(insert(USERS).values(email=email).returning(USERS.c.id))
                user_id = inserted.scalar_one()
                job = await enqueue_async(session, JOB_TYPE, {"email": email}, queue=queue)  # sent at the commit
                await session.commit()
            except (InvalidPayload, PayloadTooLarge) as err:
                await session.rollback()  # the user row goes too: a signup without its e-mail job is no signup
                return JSONResponse({"error": str(err)}, status_code=400)
            except IntegrityError:
                await session.rollback()  # the user and the job go together: nothing is sent
                return JSONResponse({"error": f"{email} is already signed up"}, status_code=409)
        return JSONResponse({"user": user_id, "job": str(job.id)}, status_code=201)

    return app
