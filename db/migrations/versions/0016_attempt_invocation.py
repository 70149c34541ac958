"""Each attempt names its invocation: the Lambda request id and the X-Ray trace id of the invocation that
claimed it, so an operator goes from an attempt to its logs and its trace (db/attempts.py).

Every claim writes them onto the row (`request_id`, `trace_id`: db/claiming/params.py's Invocation) in the
statement it already sends, two more values of the same UPDATE; migration 0015's trigger copies the row's
into `job_attempts` when the attempt ends. An abandoned attempt (a stale claim taken over) so keeps the id of
the invocation that died, the one whose logs say why.

The columns are added, and dropped by the downgrade, with a plain ALTER TABLE on both databases, never by
SQLite's batch mode: it copies a table and drops the old one, which drops its trigger and, with foreign keys
on, deletes every row that references it (job_attempts', job_steps'). The trigger is created again to copy
them. A downgrade loses the ids recorded so far, and only them.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INVOCATION = ("request_id", "trace_id")


def _attempt_history() -> Any:
    """Migration 0015, whose trigger this one extends (one definition of when an attempt has ended)."""
    script = context.script.get_revision("0015")
    assert script is not None
    return script.module


def upgrade() -> None:
    for table in ("background_jobs", "job_attempts"):
        for name in _INVOCATION:
            op.add_column(table, sa.Column(name, sa.String(64), nullable=True))
    history = _attempt_history()
    history.drop_trigger()
    history.create_trigger(
        history._COLUMNS + ", request_id, trace_id",
        history._VALUES + ", OLD.request_id, OLD.trace_id",
    )


def downgrade() -> None:
    history = _attempt_history()
    history.drop_trigger()
    for table in ("job_attempts", "background_jobs"):
        for name in reversed(_INVOCATION):  # in place, never by copying (SQLite 3.35+: see above)
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
    history.create_trigger(history._COLUMNS, history._VALUES)
