"""Every attempt kept (db/attempts.py): `job_attempts`, one row per attempt that is over and no longer the
row's own, written by a trigger on `background_jobs` in the statement that makes it so:

- an attempt that ends in anything but success (failed, given back by a snooze or a slice, cancelled), when
  the row leaves `processing`;
- an attempt taken over while `processing` (a stale claim: recorded as abandoned);
- a completed attempt, when the row leaves `completed` (an operator's retry of a finished job).

A success is not written when it happens: the row itself holds the job's latest attempt (its start, its end,
its outcome), which db/attempts.py shows after the recorded ones. So a plain job that succeeds pays the
trigger's condition and nothing more (a row per success cost the throughput ceiling 5-8%, measured side by
side). A claim handed back unused (its attempt count goes down), a heartbeat or a progress report records
nothing. Rows are deleted with their job.

On SQLite a later migration that alters `background_jobs` in batch mode (a copy of the table) must create the
trigger again.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: An attempt is over and no longer the row's own: it ended in anything but success, or a stale claim took
#: it over (attempts goes up), or a completed job leaves `completed` (a retry). Not a claim handed back
#: (attempts goes down), not a heartbeat or a progress report (neither changes status or attempts).
_ENDED = (
    "(OLD.status = 'processing' AND NEW.status <> 'completed' AND NEW.attempts >= OLD.attempts "
    "AND (NEW.status <> 'processing' OR NEW.attempts > OLD.attempts)) "
    "OR (OLD.status = 'completed' AND NEW.status <> 'completed')"
)
_VALUES = (
    "OLD.id, OLD.attempts, OLD.started_at, "
    "COALESCE(CASE WHEN OLD.status = 'completed' THEN OLD.completed_at END, NEW.updated_at, OLD.updated_at), "
    "CASE WHEN OLD.status = 'completed' THEN 'completed' WHEN NEW.status = 'processing' THEN 'abandoned' "
    "ELSE NEW.status END, "
    "CASE WHEN OLD.status = 'processing' AND NEW.status <> 'processing' THEN NEW.error END"
)
_COLUMNS = "job_id, attempt, started_at, ended_at, outcome, error"


def upgrade() -> None:
    models = context.config.attributes["models"]
    op.create_table(
        "job_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", models.UTCDateTime(), nullable=True),
        sa.Column("ended_at", models.UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["background_jobs.id"], name="fk_job_attempts_job_id", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_job_attempts"),
    )
    op.create_index("ix_job_attempts_job_id", "job_attempts", ["job_id"])
    create_trigger(_COLUMNS, _VALUES)


def create_trigger(columns: str, values: str) -> None:
    """The trigger writing `values` into `columns` of job_attempts when an attempt ends (`_ENDED`); a later
    revision that changes what is written calls it again (after `drop_trigger`)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION jobstack_attempt_ended() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO job_attempts ({columns}) VALUES ({values});
                RETURN NULL;
            END $$
            """
        )
        op.execute(
            f"CREATE TRIGGER job_attempt_ended AFTER UPDATE ON background_jobs FOR EACH ROW WHEN ({_ENDED}) "
            "EXECUTE FUNCTION jobstack_attempt_ended()"
        )
    else:
        op.execute(
            f"CREATE TRIGGER job_attempt_ended AFTER UPDATE ON background_jobs FOR EACH ROW WHEN {_ENDED} "
            f"BEGIN INSERT INTO job_attempts ({columns}) VALUES ({values}); END"
        )


def drop_trigger() -> None:
    op.execute("DROP TRIGGER IF EXISTS job_attempt_ended" + (
        " ON background_jobs" if op.get_bind().dialect.name == "postgresql" else ""
    ))  # fmt: skip


def downgrade() -> None:
    drop_trigger()
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS jobstack_attempt_ended()")
    op.drop_index("ix_job_attempts_job_id", table_name="job_attempts")
    op.drop_table("job_attempts")
