"""Priority lanes: the lane a job was published to.

`priority` names a pool of the stack that runs any job type published with that priority (its own queue
and workers: stacks/pools.py). The row keeps it so that every later send of the job (the sweeper's relay,
a release, `jobstack retry`) goes to the same lane as the first. NULL: the job type's own pool.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("background_jobs") as batch:
        batch.add_column(sa.Column("priority", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("background_jobs") as batch:
        batch.drop_column("priority")
