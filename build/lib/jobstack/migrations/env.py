"""Alembic environment: always run through db.migrate, which hands over an open connection."""

from alembic import context

# db.migrate hands over the package's models module: the package is `db` in this repository and the Lambda
# asset, `jobstack` when installed from the wheel, so no absolute import names it.
metadata = context.config.attributes["models"].metadata
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
