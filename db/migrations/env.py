"""Alembic environment: always run through db.migrate, which hands over an open connection."""

from alembic import context

from db.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations with `make migrate` or `python -m db.migrate upgrade`, not `alembic` directly")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
