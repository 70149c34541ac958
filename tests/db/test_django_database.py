"""jobstack.django_database: the DATABASES entry a Django project's settings read. From DATABASE_URL where it is
set (a web app, `jobstack local`); in a deployed worker, from the database the worker read from its secret,
with its TLS settings; refused in one line where there is none or it is not PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from db import ConfigError, django_database
from db.django_database import database, hand_over

pytestmark = pytest.mark.unit
URL = "postgresql://app:s3cret@db.example.com:6543/jobs"


@pytest.fixture(autouse=True)
def nothing_handed_over(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    django_database._handed_over.clear()
    yield
    django_database._handed_over.clear()


def test_the_url_in_the_environment_is_djangos_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", URL + "?sslmode=require")
    hand_over("postgresql://worker@elsewhere/x", sslmode="verify-full")  # the environment's wins
    assert database(CONN_MAX_AGE=60) == {
        "ENGINE": "django.db.backends.postgresql", "NAME": "jobs", "USER": "app", "PASSWORD": "s3cret",
        "HOST": "db.example.com", "PORT": "6543", "OPTIONS": {"sslmode": "require"}, "CONN_MAX_AGE": 60,
    }  # fmt: skip


def test_a_deployed_worker_hands_over_its_secrets_database_with_its_tls_settings() -> None:
    hand_over(URL, sslmode="verify-full", sslrootcert="/var/task/db/certs/global-bundle.pem")
    entry = database()
    assert (entry["HOST"], entry["PASSWORD"]) == ("db.example.com", "s3cret")
    assert entry["OPTIONS"] == {"sslmode": "verify-full", "sslrootcert": "/var/task/db/certs/global-bundle.pem"}


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (None, "no database for Django: set DATABASE_URL=postgresql://..."),
        ("sqlite:///jobs.db", "Django's tasks need PostgreSQL"),
    ],
)
def test_no_database_or_not_postgresql_is_one_line(url: str | None, says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        database(url)
    assert str(refused.value).startswith(says) and "\n" not in str(refused.value)
