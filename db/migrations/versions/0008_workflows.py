"""Workflows: jobs that wait for other jobs (groups with a callback, chains, `after=`), and handlers' results.

- `waiting` status: a job with no message yet, made `pending` by the statement that finishes the last job it
  waits for (db/dependencies.py).
- `waiting_on`, `has_dependents`, `on_failure`, `workflow_id` and `result` columns; every existing row gets
  0 / false / NULL, so the rows and statements of plain jobs behave as before.
- `job_dependencies`: one row per (prerequisite, dependent), deleted with either job (ON DELETE CASCADE).
  Its partial index of unsettled rows serves the sweeper's backstop (a worker that died between a
  prerequisite's failure and settling its dependents); the workflow index is partial too (most jobs belong
  to no workflow). Both are declared here only, as 0006's partial index is (db/models.py says why).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = "status IN ('pending', 'processing', 'completed', 'failed', 'cancelled', 'scheduled')"
_AFTER = "status IN ('pending', 'processing', 'completed', 'failed', 'cancelled', 'scheduled', 'waiting')"
_IN_WORKFLOW = sa.text("workflow_id IS NOT NULL")
_UNSETTLED = sa.text("settled_at IS NULL")


def upgrade() -> None:
    models = context.config.attributes["models"]  # the package's own, under either name
    with op.batch_alter_table("background_jobs") as batch:
        batch.drop_constraint("status", type_="check")
        batch.create_check_constraint("status", _AFTER)
        batch.add_column(sa.Column("waiting_on", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("has_dependents", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("on_failure", sa.String(8), nullable=True))
        batch.add_column(sa.Column("workflow_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("result", models.JsonDocument(), nullable=True))
        batch.create_check_constraint("waiting_on_not_negative", "waiting_on >= 0")
        batch.create_check_constraint("on_failure", "on_failure IN ('cancel', 'continue')")
    op.create_index(
        "ix_background_jobs_workflow_id",
        "background_jobs",
        ["workflow_id"],
        postgresql_where=_IN_WORKFLOW,
        sqlite_where=_IN_WORKFLOW,
    )
    op.create_table(
        "job_dependencies",
        sa.Column("prerequisite_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("settled_at", models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("prerequisite_id", "job_id", name="pk_job_dependencies"),
        sa.ForeignKeyConstraint(
            ["prerequisite_id"],
            ["background_jobs.id"],
            name="fk_job_dependencies_prerequisite_id",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["background_jobs.id"], name="fk_job_dependencies_job_id", ondelete="CASCADE"
        ),
        sa.CheckConstraint("prerequisite_id <> job_id", name="ck_job_dependencies_not_itself"),
    )
    op.create_index("ix_job_dependencies_job_id_position", "job_dependencies", ["job_id", "position"])
    op.create_index(
        "ix_job_dependencies_unsettled",
        "job_dependencies",
        ["prerequisite_id"],
        postgresql_where=_UNSETTLED,
        sqlite_where=_UNSETTLED,
    )


def downgrade() -> None:
    # A waiting job is released rather than lost: pending, its message sent by the sweeper.
    op.execute("UPDATE background_jobs SET status = 'pending' WHERE status = 'waiting'")
    op.drop_table("job_dependencies")
    op.drop_index("ix_background_jobs_workflow_id", table_name="background_jobs")
    with op.batch_alter_table("background_jobs") as batch:
        batch.drop_constraint("on_failure", type_="check")
        batch.drop_constraint("waiting_on_not_negative", type_="check")
        batch.drop_column("result")
        batch.drop_column("workflow_id")
        batch.drop_column("on_failure")
        batch.drop_column("has_dependents")
        batch.drop_column("waiting_on")
        batch.drop_constraint("status", type_="check")
        batch.create_check_constraint("status", _BEFORE)
