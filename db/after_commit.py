"""What happens after the caller's commit, for jobs written in its transaction (db/outbox.py, db/workflows.py):
their messages are sent (`send`), by hand after a Connection's commit, or by a Session's own after_commit
hook. A rollback sends nothing. Jobs that wait for others (`waiting`) are not sent: their release is."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, event, select

from .clock import utcnow
from .destinations import Destination
from .engine import DB
from .exceptions import DatabaseUnavailable, PublishBatchError
from .models import Job, jobs_table
from .preparation import Prepared, delay_until, unsent
from .relay import mark_sent
from .sending import send_all

log = logging.getLogger("jobstack.outbox")
_PENDING_KEY = "jobstack_pending_jobs"
_COMMITTED_KEY = "jobstack_committed_jobs"


def send(jobs: Sequence[Job], *, queue: Destination, db: DB | None = None) -> list[Job]:
    """Send the messages of enqueued jobs, after their transaction committed. With `db`, records the send
    (so the sweeper does not send them again). Raises PublishBatchError listing what SQS refused: those rows
    stay pending and the sweeper sends them later."""
    return _record_sent(jobs, *_send_messages(jobs, queue), db)


def _send_messages(jobs: Sequence[Job], queue: Destination) -> tuple[list[Job], dict[Any, str], Any]:
    """SQS's part of `send`: the jobs sent, what SQS refused, and when."""
    waiting = [job for job in jobs if unsent(job)]
    now = utcnow()  # a job enqueued to run within 15 minutes waits the rest of its time in SQS
    if not waiting:
        return [], {}, now
    failures = send_all(queue, [Prepared.first_send_of(job, delay_until(job.run_at, now)) for job in waiting])
    return [job for job in waiting if job.id not in failures], failures, now


def _record_sent(jobs: Sequence[Job], sent: list[Job], failures: dict[Any, str], now: Any, db: DB | None) -> list[Job]:
    """The database's part of `send`: the sent rows marked (with `db`), what SQS refused raised."""
    if db is not None and sent:
        # If this fails the messages are out anyway: at worst the sweeper sends one duplicate, which the
        # worker's claim absorbs.
        with contextlib.suppress(DatabaseUnavailable):
            mark_sent(db, [job.id for job in sent])
    if failures:
        raise PublishBatchError(failures, [job.id for job in sent])
    marked = {job.id: replace(job, sent_at=now, send_count=job.send_count + 1) for job in sent}
    return [marked.get(job.id, job) for job in jobs]


def is_session(conn: Any) -> bool:
    """A SQLAlchemy ORM Session, without importing the ORM (the worker's cold start never needs it): if the
    ORM is not imported, nothing can be a Session."""
    orm = sys.modules.get("sqlalchemy.orm")
    return orm is not None and isinstance(conn, orm.Session)


def send_after_commit(session: Any, jobs: list[Job], queue: Destination) -> None:
    """Remember the jobs on the session; send them once its transaction commits, drop them on rollback.

    The send waits for the transaction's end (`after_transaction_end`), not its commit (`after_commit`): at the
    commit the session still holds its connection, and the send needs one of the pool's (to read which rows
    committed and mark them sent). With every connection held by a committing request (a busy app, a small
    pool), each would wait for another's: measured with 20 concurrent async commits on a pool of 20, every one
    failed with ConnectionBusy after the pool's timeout."""
    session.info.setdefault(_PENDING_KEY, []).append((jobs, queue))
    if not event.contains(session, "after_commit", _after_commit):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)
        event.listen(session, "after_transaction_end", _after_transaction_end)


def _after_commit(session: Any) -> None:
    """Committed: what it enqueued is sent when the transaction has ended and given its connection back."""
    session.info[_COMMITTED_KEY] = session.info.pop(_PENDING_KEY, [])


def _after_transaction_end(session: Any, transaction: Any) -> None:
    if transaction.parent is not None:
        return  # a savepoint's end: the outer transaction decides
    pending: list[tuple[list[Job], Destination]] = session.info.pop(_COMMITTED_KEY, [])
    if not pending:
        return
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    db = DB(engine=engine, url=engine.url.render_as_string())
    # Only rows that were committed: a savepoint rolled back after enqueue() took its rows with it.
    ids = [job.id for jobs, _ in pending for job in jobs]
    with db.autocommit() as conn:
        committed = set(conn.execute(select(jobs_table.c.id).where(jobs_table.c.id.in_(ids))).scalars())
    for jobs, queue in pending:
        try:
            _send_committed([job for job in jobs if job.id in committed], queue, db)
        except PublishBatchError as err:
            # After a commit there is nobody to raise to: the rows are pending and the sweeper sends them.
            log.warning("enqueued jobs not sent; the sweeper will send them", extra={"failures": str(err)})


def _send_committed(jobs: list[Job], queue: Destination, db: DB) -> None:
    """`send`, from a session's after_commit hook. An AsyncSession (db/async_outbox.py) commits in a greenlet
    on the caller's event loop: there SQS is called on a thread (boto3 blocks; the loop serves other requests
    meanwhile) and awaited, so `await session.commit()` returns once the messages are out, as a Session's
    `commit()` does; the sent rows are marked on the session's own (async) engine, in the greenlet."""
    from sqlalchemy.util.concurrency import await_only, in_greenlet

    if not in_greenlet():
        send(jobs, queue=queue, db=db)
        return
    import asyncio

    _record_sent(jobs, *await_only(asyncio.to_thread(_send_messages, jobs, queue)), db)


def _after_rollback(session: Any) -> None:
    session.info.pop(_PENDING_KEY, None)
