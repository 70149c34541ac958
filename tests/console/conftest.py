"""The console's fixtures: a target on the test database and moto's queues, and its client."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient

from cli.console.guard import Guard
from cli.target import Target
from db import Queue
from tests.support.cli_runner import restoring_environ
from tests.support.console import client_for, flag_target

_restore_environ = pytest.fixture(autouse=True)(restoring_environ)


@pytest.fixture
def closing() -> Iterator[Callable[[Target], Target]]:
    """`closing(target)`: the target, its database engine disposed when the test ends."""
    made: list[Target] = []

    def keep(target: Target) -> Target:
        made.append(target)
        return target

    yield keep
    for target in made:
        target.close()


@pytest.fixture
def target(pg_url: str, queue: Queue, dlq: Queue, closing: Callable[[Target], Target]) -> Target:
    return closing(flag_target(pg_url, queue.url, dlq.url))


@pytest.fixture
def logged_in(target: Target) -> tuple[FlaskClient, Guard]:
    return client_for(target)


@pytest.fixture
def client(logged_in: tuple[FlaskClient, Guard]) -> FlaskClient:
    return logged_in[0]
