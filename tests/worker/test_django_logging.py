"""A Django project's LOGGING, applied by `django.setup()` at the worker's first Django task, does not silence
the worker's own loggers: dictConfig disables every existing logger unless the dict says
`disable_existing_loggers: False` (Python's logging.config docs), and a project's dict often omits it."""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Iterator

import pytest

from worker.jobs.django_tasks import keep_worker_logging
from worker.observability import LOGGER_NAME

pytestmark = pytest.mark.unit


@pytest.fixture
def worker_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger(LOGGER_NAME)
    outbox = logging.getLogger("jobstack.outbox")
    yield logger
    logger.disabled = outbox.disabled = False


def test_a_projects_logging_config_leaves_the_worker_heard(worker_logger: logging.Logger) -> None:
    other = logging.getLogger("some.library")
    logging.config.dictConfig({"version": 1, "incremental": False})  # a project's LOGGING, without the flag
    assert worker_logger.disabled and other.disabled, "what dictConfig does to existing loggers"
    keep_worker_logging()
    assert not worker_logger.disabled and not logging.getLogger("jobstack.outbox").disabled
    assert other.disabled, "the project's choice for other loggers stands"
    other.disabled = False
