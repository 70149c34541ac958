"""Sending a signal to the jobs that wait for it (`ctx.wait_for_signal`): in the sender's own transaction, or
on its own. The rules (what one key wakes, what is kept, the timeout) are db/waits.py's.

    with Session(engine) as session:
        refund.approved = True                                  # your own write
        signal(session, "refund-approval:4711", {"approved": True}, queue=queue)
        session.commit()                                        # the job resumes only if this commits

With a SQLAlchemy Session and `queue`, the released jobs' messages are sent when the session commits, and
forgotten if it rolls back (the outbox's rule, db/after_commit.py). With a Connection, call
`send(list(sent.released), queue=queue)` after your commit. `signal_now(db, ...)` commits by itself and sends.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from .after_commit import is_session, send, send_after_commit
from .destinations import Destination
from .engine import DB
from .waits import Sent, check_key
from .waits import signal as _signal

__all__ = ["Sent", "signal", "signal_now"]


def signal(conn: Any, key: str, payload: Any = None, *, queue: Destination | None = None) -> Sent:
    """Signal `key` in the caller's open transaction: a SQLAlchemy Session (with `queue`, the released jobs are
    sent after its commit) or Connection (send them yourself after the commit). Commits nothing."""
    check_key(key)
    if is_session(conn):
        sent = _signal(conn.connection(), key, payload)
        if queue is not None and sent.released:
            send_after_commit(conn, list(sent.released), queue)
        return sent
    if isinstance(conn, Connection):
        return _signal(conn, key, payload)
    raise TypeError(
        f"signal takes a SQLAlchemy Session or Connection, not {type(conn).__name__}: or signal_now(db, ...)"
    )


def signal_now(db: DB, key: str, payload: Any = None, *, queue: Destination) -> Sent:
    """Signal `key` in a transaction of its own, then send the released jobs' messages. If the send fails, the
    rows are pending and unsent: the sweeper sends them."""
    check_key(key)
    with db.begin() as conn:
        sent = _signal(conn, key, payload)
    if sent.released:
        send(list(sent.released), queue=queue, db=db)
    return sent
