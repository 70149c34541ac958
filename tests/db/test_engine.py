"""URL handling and the password rule: a URL's password never appears in reprs, logs or errors."""

from __future__ import annotations

import pytest

from db import ConfigError, create_db, normalise_url, redact

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgres://u:p@db.example.com:6543/postgres", "postgresql+psycopg"),
        ("postgresql://u:p@db.example.com:6543/postgres", "postgresql+psycopg"),
        ("postgresql+psycopg://u:p@db.example.com/postgres", "postgresql+psycopg"),
        ("sqlite:///tmp/jobs.db", "sqlite"),
        ("sqlite://", "sqlite"),
    ],
)
def test_accepted_urls_are_normalised_to_one_driver(given: str, driver: str) -> None:
    assert normalise_url(given).drivername == driver


def test_pooler_flags_that_libpq_rejects_are_dropped() -> None:
    url = normalise_url("postgresql://u:p@pooler.supabase.com:6543/postgres?pgbouncer=true&sslmode=require")
    assert dict(url.query) == {"sslmode": "require"}


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("mysql://root:hunter2@db/app", "unsupported database URL"),
        ("", "database URL is empty"),
        ("postgresql://u:hunter2@/postgres", "names no host"),
        ("postgresql://u:hunter2@host:notaport/db", "malformed database URL"),
    ],
)
def test_bad_urls_get_one_line_without_the_password(given: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_db(given)
    message = str(caught.value)
    assert says in message
    assert "hunter2" not in message
    assert "\n" not in message


def test_repr_and_url_hide_the_password() -> None:
    db = create_db("postgresql://app:hunter2@db.example.com:6543/postgres")
    assert "hunter2" not in repr(db)
    assert "hunter2" not in db.url
    assert "db.example.com:6543" in repr(db)


def test_redact_masks_urls_and_libpq_dsns() -> None:
    text = "failed: postgresql://app:s3cr%40t@h/db and host=h password=s3cret user=app"
    assert redact(text) == "failed: postgresql://app:***@h/db and host=h password=*** user=app"
