"""Migrations run both ways on real PostgreSQL and agree with the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from db import DB
from db.migrate import current, downgrade, head, main, upgrade
from db.models import metadata

pytestmark = pytest.mark.integration


def _tables(db: DB) -> set[str]:
    with db.begin() as conn:
        return set(inspect(conn).get_table_names())


def test_upgrade_downgrade_upgrade(pg_db: DB) -> None:
    assert current(pg_db) == head()
    downgrade(pg_db, "base")
    assert current(pg_db) is None
    assert "background_jobs" not in _tables(pg_db)
    upgrade(pg_db)
    assert current(pg_db) == head()
    assert "background_jobs" in _tables(pg_db)
    with pg_db.begin() as conn:  # 0013's index, built CONCURRENTLY outside the migration's transaction, is valid
        valid = conn.execute(
            text("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_background_jobs_payload'::regclass")
        ).scalar_one()
    assert valid is True


def test_0002_keeps_existing_rows_and_marks_them_never_sent(any_db: DB) -> None:
    """Rows from before `sent_at` existed are "never confirmed sent": the sweeper sends a pending one once."""
    downgrade(any_db, "0001")
    with any_db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO background_jobs (id, type, payload, status, attempts, max_attempts, created_at, "
                "updated_at) VALUES ('0b6f1f6e-8f4e-4d59-9a43-3c1c0f0e7a11', 'test-echo', '{}', 'pending', 0, 5, "
                "'2026-11-01 00:00:00+00', '2026-11-01 00:00:00+00')"
            )
        )
    upgrade(any_db)
    with any_db.begin() as conn:
        row = conn.execute(text("SELECT status, sent_at, send_count FROM background_jobs")).one()
    assert tuple(row) == ("pending", None, 0)


def test_0003_allows_cancelled_and_its_downgrade_keeps_the_rows(any_db: DB) -> None:
    """Down again, a cancelled job becomes a failed one ("cancelled") rather than breaking the old CHECK."""
    with any_db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO background_jobs (id, type, payload, status, attempts, max_attempts, created_at, "
                "updated_at) VALUES ('0b6f1f6e-8f4e-4d59-9a43-3c1c0f0e7a12', 'test-echo', '{}', 'cancelled', 0, 5, "
                "'2026-11-01 00:00:00+00', '2026-11-01 00:00:00+00')"
            )
        )
    downgrade(any_db, "0002")
    with any_db.begin() as conn:
        assert tuple(conn.execute(text("SELECT status, error FROM background_jobs")).one()) == ("failed", "cancelled")
    upgrade(any_db)


#: Declared by their migrations only (db/models.py says why: a dialect-specific WHERE would load SQLAlchemy's
#: PostgreSQL dialect with the models, on the worker's cold start). Each is partial: its WHERE, spaces and
#: parentheses aside.
MIGRATION_ONLY_INDEXES = {
    "ix_background_jobs_idempotency_key": ("(idempotency_key)", "idempotency_key IS NOT NULL"),
    "ix_background_jobs_retrying_updated_at": ("(updated_at)", "attempts < max_attempts"),
    "ix_background_jobs_workflow_id": ("(workflow_id)", "workflow_id IS NOT NULL"),
    "ix_job_dependencies_unsettled": ("(prerequisite_id)", "settled_at IS NULL"),
    "uq_background_jobs_type_unique_key_pending": ("(type, unique_key)", "unique_key IS NOT NULL"),
    "ix_background_jobs_type_concurrency_key_running": ("(type, concurrency_key)", "concurrency_key IS NOT NULL"),
    "ix_background_jobs_tenant_unfinished": ("(tenant, status)", "tenant IS NOT NULL AND status"),
    "ix_background_jobs_tenant_created": ("(tenant, created_at)", "tenant IS NOT NULL"),
    "ix_background_jobs_wait_key": ("(wait_key)", "'waiting'"),  # PostgreSQL writes it status::text = 'waiting'::text
}


#: PostgreSQL's alone, declared in a migration only: 0013's GIN index of payloads (db/payload_search.py).
POSTGRESQL_ONLY_INDEXES = {"ix_background_jobs_payload"}


def test_models_and_migrations_agree(any_db: DB) -> None:
    with any_db.begin() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    declared_apart = MIGRATION_ONLY_INDEXES.keys() | POSTGRESQL_ONLY_INDEXES
    assert [d for d in diff if not (d[0] == "remove_index" and d[1].name in declared_apart)] == []


@pytest.mark.parametrize("name", sorted(MIGRATION_ONLY_INDEXES))
def test_the_migration_only_indexes_are_partial(any_db: DB, name: str) -> None:
    """Each holds only the rows its queries look for (jobs with a key; failed jobs with attempts left)."""
    query = (
        "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
        if any_db.dialect == "postgresql"
        else "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    )
    with any_db.begin() as conn:
        definition = conn.execute(text(query), {"name": name}).scalar_one()
    columns, predicate = MIGRATION_ONLY_INDEXES[name]
    plain = definition.replace('"', "").replace("(", "").replace(")", "")
    assert columns in definition.replace('"', "") and "WHERE" in definition
    assert predicate in plain


def test_pruning_is_served_by_the_status_updated_at_index(pg_db: DB) -> None:
    with pg_db.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))  # an empty table would be scanned otherwise
        plan = "\n".join(
            conn.execute(
                text(
                    "EXPLAIN DELETE FROM background_jobs WHERE id IN (SELECT id FROM background_jobs "
                    "WHERE status = 'completed' AND updated_at < now() ORDER BY updated_at LIMIT 1000)"
                )
            ).scalars()
        )
    assert "ix_background_jobs_status_updated_at" in plan


def test_indexes_serve_the_sweeper_and_listing(pg_db: DB) -> None:
    with pg_db.begin() as conn:
        indexes = {tuple(ix["column_names"]) for ix in inspect(conn).get_indexes("background_jobs")}
        plan = conn.execute(
            text("EXPLAIN SELECT * FROM background_jobs WHERE status = 'pending' ORDER BY created_at LIMIT 5")
        ).scalars()
    assert ("status", "created_at") in indexes
    assert ("created_at",) in indexes
    assert plan  # the planner accepted the sweeper's query shape


def test_migrate_cli_reports_the_revision(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["upgrade", "--database-url", pg_url]) == 0
    assert f"at revision {head()}" in capsys.readouterr().out


def test_migrate_cli_without_a_url_is_bad_usage(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["upgrade"]) == 2
    assert capsys.readouterr().err.strip() == "error: no database: set DATABASE_URL or pass --database-url"


def test_0016_keeps_the_attempt_trigger_both_ways(any_db: DB) -> None:
    """0016 adds the invocation's ids to the attempt trigger. Its downgrade keeps every attempt recorded (but
    their ids, whose columns it drops) and the trigger (without the ids); the upgrade again records them. On
    SQLite, a batch-mode copy of the table would have deleted the attempts (by the foreign key's cascade)
    and dropped the trigger."""
    job_id = "0b6f1f6e-8f4e-4d59-9a43-3c1c0f0e7a16"

    def ends_an_attempt(conn: Connection, attempt: int) -> None:
        conn.execute(
            text(
                "UPDATE background_jobs SET status = 'failed', error = 'boom', updated_at = '2026-12-06 10:00:00+00' "
                "WHERE id = :id AND attempts = :attempt"
            ),
            {"id": job_id if any_db.dialect == "postgresql" else job_id.replace("-", ""), "attempt": attempt},
        )

    with any_db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO background_jobs (id, type, payload, status, attempts, max_attempts, created_at, "
                "updated_at, started_at, request_id, trace_id) VALUES (:id, 'test-echo', '{}', 'processing', 1, 5, "
                "'2026-12-06 09:00:00+00', '2026-12-06 09:00:00+00', '2026-12-06 09:00:00+00', 'req-1', 'trace-1')"
            ),
            {"id": job_id if any_db.dialect == "postgresql" else job_id.replace("-", "")},
        )
        ends_an_attempt(conn, 1)
    try:
        downgrade(any_db, "0015")
        with any_db.begin() as conn:
            conn.execute(text("UPDATE background_jobs SET status = 'processing', attempts = 2"))
            ends_an_attempt(conn, 2)
    finally:
        upgrade(any_db)
    with any_db.begin() as conn:
        conn.execute(text("UPDATE background_jobs SET status = 'processing', attempts = 3, request_id = 'req-3'"))
        ends_an_attempt(conn, 3)
        rows = conn.execute(text("SELECT attempt, outcome, request_id FROM job_attempts ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(1, "failed", None), (2, "failed", None), (3, "failed", "req-3")]
