"""Durable steps, and a running job's progress and heartbeat.

`job_steps`: one row per step a job's handler completed (`ctx.step`, db/steps.py), in the order it ran:
its name, its result (JSON text, at most RESULT_MAX_BYTES) and the attempt that ran it. A later attempt, or
a later invocation of the same attempt (a job sliced across invocations), reads the journal instead of
running a completed step again. Deleting a job (pruning) deletes its steps.

`progress` and `progress_message`: what the handler last reported (`ctx.progress`), for `jobstack show`,
the console and the web app. `heartbeat_at`: when the invocation holding the job last said it is alive (its
claim, then worker/heartbeat.py): the stale-claim rule (db/states.py: STALE) reads it before the start time.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    models = context.config.attributes["models"]  # the package's own, under either name
    op.create_table(
        "job_steps",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", models.UTCDateTime(), nullable=False),
        sa.Column("finished_at", models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["background_jobs.id"], name="fk_job_steps_job_id", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "position", name="pk_job_steps"),
        sa.UniqueConstraint("job_id", "name", name="uq_job_steps_job_id_name"),
    )
    with op.batch_alter_table("background_jobs") as batch:
        batch.add_column(sa.Column("progress", sa.Float(), nullable=True))
        batch.add_column(sa.Column("progress_message", sa.String(255), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", models.UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_table("job_steps")
    with op.batch_alter_table("background_jobs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("progress_message")
        batch.drop_column("progress")
