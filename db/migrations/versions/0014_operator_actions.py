"""The audit trail of operator actions (db/audit.py): one row per retry, cancel, redrive, prune, pause,
resume, replay or job published by hand, from the CLI or the console, with who did it and what it touched.
`job_id` and `new_job_id` link a replay's old job and the new one it published, both ways (each job's page
shows the other).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    models = context.config.attributes["models"]
    op.create_table(
        "operator_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", models.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("jobs", sa.Integer(), nullable=False),
        sa.Column("selection", sa.String(500), nullable=False),
        sa.Column("outcome", sa.String(500), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("new_job_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_operator_actions"),
    )
    op.create_index("ix_operator_actions_at", "operator_actions", ["at"])
    op.create_index("ix_operator_actions_job_id", "operator_actions", ["job_id"])
    op.create_index("ix_operator_actions_new_job_id", "operator_actions", ["new_job_id"])


def downgrade() -> None:
    op.drop_index("ix_operator_actions_new_job_id", table_name="operator_actions")
    op.drop_index("ix_operator_actions_job_id", table_name="operator_actions")
    op.drop_index("ix_operator_actions_at", table_name="operator_actions")
    op.drop_table("operator_actions")
