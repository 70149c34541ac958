"""A partial index of the failed jobs that will be retried (attempts left), by when they last changed: the
sweeper's re-send looks for those whose message was lost, and without it walks every failed row ever kept
(failed-for-good history, 3% of a table of millions: bench/table_scale.py measured the re-send at 3.6x its
10,000-row time on 300,000 rows). Declared here only, as 0006's partial index is (db/models.py says why).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RETRYING = sa.text("status = 'failed' AND attempts < max_attempts")


def upgrade() -> None:
    op.create_index(
        "ix_background_jobs_retrying_updated_at",
        "background_jobs",
        ["updated_at"],
        postgresql_where=_RETRYING,
        sqlite_where=_RETRYING,
    )


def downgrade() -> None:
    op.drop_index("ix_background_jobs_retrying_updated_at", table_name="background_jobs")
