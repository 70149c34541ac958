"""Search by payload (db/payload_search.py): a GIN index of `payload` with `jsonb_path_ops` (PostgreSQL only;
SQLite has no such index and a local table is small).

`jsonb_path_ops` rather than the default `jsonb_ops`: it indexes one hash per path to a value, so it is
smaller and faster to search for containment (`@>`), the only operator the search uses. It is built
CONCURRENTLY, outside the migration's transaction: on a table of millions a plain CREATE INDEX would block
every publish and claim for as long as it builds. What it costs a publish is measured in docs/benchmarks.md
("payload search").

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_background_jobs_payload"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.create_index(
            INDEX,
            "background_jobs",
            ["payload"],
            postgresql_using="gin",
            postgresql_ops={"payload": "jsonb_path_ops"},
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, table_name="background_jobs", postgresql_concurrently=True, if_exists=True)
