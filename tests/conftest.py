"""Shared fixtures: a real PostgreSQL database for the session, SQLite files, moto SQS.

The session creates one uniquely named PostgreSQL database, migrates it, and drops it at the end; under
pytest-xdist (`make test`) each worker process is a session of its own, with its own database. Each test
that asks for `pg_db` starts with an empty `background_jobs` table. No server is a failure with one
line naming TEST_DATABASE_URL, never a skip.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import text

from cli.local.embedded import keep_one_receiver_per_message
from cli.scratch_database import scratch_database
from db import DB, DatabaseUnavailable, Queue, create_db
from db.migrate import upgrade
from tests.support.queues import queue_pair
from tests.support.strict_sqs import StrictSqs

pytest_plugins = [
    "tests.support.worker_support",
    "tests.support.workflows",
    "tests.support.flow_control",
    "tests.support.tracing",
]
REGION = "us-east-1"
ROOT = Path(__file__).resolve().parent.parent

# jsii runs the CDK in the Node.js first on PATH: the project's pinned Node 22, as the Makefile does, so a
# bare `pytest` behaves like `make test`.
os.environ["PATH"] = f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}"


_NEEDS_POSTGRES = {"pg_url", "pg_db", "any_db", "runtime"}


#: Every test runs in exactly the tiers its marker names (`make unit`, `make integration`, ...); a test with
#: none would run only in `make test` and in no tier.
TIERS = ("unit", "integration", "infra", "e2e")
_SLOWEST_FIRST = ("e2e", "infra", "integration", "unit")
#: The files that take longest (seconds on the 2-core machine, 4 workers: `pytest --durations=0` summed per
#: file), started before the rest of their tier so that none of them is the last file a worker runs alone.
_LONGEST_FILES = (
    "tests/infra/test_rehearsal.py",  # 150-180 s: the CDK CLI's real deploy and destroy, twice
    "tests/reliability/test_load.py",  # 25 s with make test's 3,000 jobs
    "tests/infra/test_package.py",  # 40 s: a fresh virtualenv installs the wheel
    "tests/console/test_browser.py",  # 40 s: Chromium
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test without a tier marker. Name every test that needs the PostgreSQL server (marker
    `postgres`), so `make unit` and `make infra` can run without one; a `unit` test that asks for it is a
    mistake in the test, refused here."""
    untiered = [item.nodeid for item in items if not any(item.get_closest_marker(t) for t in TIERS)]
    if untiered:
        raise pytest.UsageError(
            f"{len(untiered)} test(s) carry no tier marker ({', '.join(TIERS)}), the first {untiered[0]}: "
            "add pytestmark = pytest.mark.<tier> to its module"
        )
    mixed = [item.nodeid for item in items if len({m.name for m in item.iter_markers() if m.name in TIERS}) > 1]
    if mixed:
        raise pytest.UsageError(
            f"{len(mixed)} test(s) carry more than one tier marker, the first {mixed[0]}: one tier per test, and "
            "one per file (put the other tier's tests in a file of their own)"
        )
    files: dict[str, set[str]] = {}
    for item in items:
        files.setdefault(str(item.path), set()).update(m.name for m in item.iter_markers() if m.name in TIERS)
    mixing = sorted(path for path, tiers in files.items() if len(tiers) > 1)
    if mixing:
        raise pytest.UsageError(f"{mixing[0]} mixes tiers ({', '.join(sorted(files[mixing[0]]))}): split it by tier")
    for item in items:
        if _NEEDS_POSTGRES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
            for tier in ("unit", "infra"):  # `make unit` and `make infra` run without a database
                if item.get_closest_marker(tier) is not None:
                    raise pytest.UsageError(f"{item.nodeid} is marked {tier} but needs PostgreSQL: mark it integration")
    # Longest first: pytest-xdist hands whole files to its workers in this order (--dist loadfile), so the
    # minutes-long end-to-end files start at once instead of last, when one worker would run them alone.
    # xdist keeps this order only with --no-loadscope-reorder (the Makefile passes it); by default it hands
    # out the files with the most tests first.
    items.sort(key=_start_order)


def _start_order(item: pytest.Item) -> tuple[int, int]:
    path = item.path.relative_to(ROOT).as_posix()
    longest = _LONGEST_FILES.index(path) if path in _LONGEST_FILES else len(_LONGEST_FILES)
    return longest, _SLOWEST_FIRST.index(next(m.name for m in item.iter_markers() if m.name in TIERS))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh, migrated database that lives for the whole test session."""
    try:
        scratch = scratch_database()
        url = scratch.__enter__()
    except DatabaseUnavailable as err:
        pytest.exit(f"PostgreSQL is required for the tests: {err}", returncode=1)
    try:
        yield url
    finally:
        scratch.__exit__(None, None, None)


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[DB]:
    db = create_db(pg_url, pool_size=4)
    with db.begin() as conn:
        conn.execute(
            text("TRUNCATE background_jobs, rate_limiters, operator_actions, job_signals CASCADE")
        )  # all tests fill
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated for the session; each test gets a copy (3 ms instead of ~100 ms of alembic)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "jobs.db"
    db = create_db(f"sqlite:///{path}")
    upgrade(db)
    with db.begin() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))  # everything in the main file, to copy it alone
    db.dispose()
    return path


@pytest.fixture
def sqlite_db(tmp_path: Path, sqlite_template: Path) -> Iterator[DB]:
    """A migrated SQLite database of the test's own (a copy of the session's template)."""
    path = tmp_path / "jobs.db"
    shutil.copyfile(sqlite_template, path)
    db = create_db(f"sqlite:///{path}")
    yield db
    db.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def any_db(request: pytest.FixtureRequest) -> DB:
    """The same test against both supported databases."""
    name = "pg_db" if request.param == "postgresql" else "sqlite_db"
    db: DB = request.getfixturevalue(name)
    return db


@functools.cache
def _boto_session() -> boto3.Session:
    """One boto3 session per test process: a new one reads botocore's endpoint rules and SQS's model again
    (about 80 ms a test). moto's stubber is a handler of every session made after `import moto`, and each
    `mock_aws()` starts from empty backends, so sharing the session shares no state between tests."""
    return boto3.Session()


@pytest.fixture
def aws() -> Iterator[None]:
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[var] = "testing"
    keep_one_receiver_per_message()  # SQS's rule, which moto's concurrent receives break (cli/local/embedded.py)
    with mock_aws():
        # moto empties boto3's default session for the mock (restored when it stops): the code under test's
        # `boto3.client(...)` calls get the process's one session instead of building one each.
        boto3.DEFAULT_SESSION = _boto_session()
        yield


@pytest.fixture
def sqs(aws: None) -> StrictSqs:
    """moto's SQS behind StrictSqs, which refuses what real SQS refuses and moto accepts."""
    return StrictSqs(_boto_session().client("sqs", region_name=REGION))


@pytest.fixture
def queues(sqs: StrictSqs) -> tuple[Queue, Queue]:
    """A main queue with a DLQ and redrive, as the stack creates them."""
    return queue_pair(sqs, "jobs", VisibilityTimeout="30")


@pytest.fixture
def dlq(queues: tuple[Queue, Queue]) -> Queue:
    return queues[1]


@pytest.fixture
def queue(queues: tuple[Queue, Queue]) -> Queue:
    return queues[0]
