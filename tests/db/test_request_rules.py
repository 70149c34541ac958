"""A job request's rules are the same whichever way it comes in: publish, publish_many, enqueue, workflows
and the CLI, on both databases. Reported: `publish(..., delay=timedelta(seconds=-5))` ran at once while
`jobstack publish --delay -5` was refused; `priority="bogus"` was stored and run on a stack with one queue and
refused on one with lanes; `after=` with a string id was a multi-line StatementError, and on SQLite every
`after=` was UnknownPrerequisite.

Each refusal is one line, and nothing is written."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from db import DB, InvalidBatchItem, JobRequest, JobStatus, Queue, enqueue, get_job, publish, publish_many
from db.exceptions import UnknownPriority
from db.routes import Router, Routes
from db.workflows import UnknownPrerequisite, publish_chain, publish_group
from stacks.pools import route_document
from stacks.settings import load_settings
from tests.support.synth import cdk_context

pytestmark = pytest.mark.integration


def _rows(db: DB) -> int:
    with db.begin() as conn:
        return int(conn.execute(text("SELECT count(*) FROM background_jobs")).scalar_one())


def _via_publish(db: DB, queue: Any, **kw: Any) -> Any:
    return publish(db, "test-echo", {}, queue=queue, **kw)


def _via_publish_many(db: DB, queue: Any, **kw: Any) -> Any:
    return publish_many(db, [JobRequest("test-echo", {}, **kw)], queue=queue)


def _via_enqueue(db: DB, queue: Any, **kw: Any) -> Any:
    with db.begin() as conn:
        return enqueue(conn, "test-echo", {}, queue=queue, **kw)


def _via_group(db: DB, queue: Any, **kw: Any) -> Any:
    return publish_group(db, [JobRequest("test-echo", {}, **kw)], queue=queue)


def _via_chain(db: DB, queue: Any, **kw: Any) -> Any:
    return publish_chain(db, [JobRequest("test-echo", {}, **kw)], queue=queue)


ENTRIES: dict[str, Callable[..., Any]] = {
    "publish": _via_publish,
    "publish_many": _via_publish_many,
    "enqueue": _via_enqueue,
    "publish_group": _via_group,
    "publish_chain": _via_chain,
}


def _one_line(err: BaseException) -> str:
    message = err.reason if isinstance(err, InvalidBatchItem) else str(err)
    assert "\n" not in str(err)
    return message


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_priority_of_the_wrong_form_is_refused_by_every_way_in(any_db: DB, queue: Queue, entry: str) -> None:
    with pytest.raises((ValueError, InvalidBatchItem)) as caught:
        ENTRIES[entry](any_db, queue, priority="Bogus Lane")
    assert "priority must name a priority lane (1-24 lowercase letters" in _one_line(caught.value)
    assert _rows(any_db) == 0


def _dev_router_of_a_project_with_a_prod_lane(queue: Queue) -> Router:
    """dev has one queue; prod has a lane "high": dev's route map names "high" too, with no lane here."""
    context = cdk_context(prod={"pools": {"urgent": {"priority": "high"}}})
    dev = load_settings(context, "dev")
    document = route_document(dev.all_pools, lambda p: queue.url)
    assert document["priorities"] == {"high": ""}
    return Router(queue.client, Routes.from_json(json.dumps(document)))


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_priority_no_environment_has_is_refused_in_dev_as_in_prod(any_db: DB, queue: Queue, entry: str) -> None:
    router = _dev_router_of_a_project_with_a_prod_lane(queue)
    with pytest.raises((UnknownPriority, InvalidBatchItem)) as caught:
        ENTRIES[entry](any_db, router, priority="bogus")
    assert "cannot be published with priority 'bogus'" in _one_line(caught.value)
    assert "knows priorities high" in _one_line(caught.value)
    assert _rows(any_db) == 0
    # The project's own priority runs in the type's pool here, and keeps its priority for prod's sends.
    ENTRIES[entry](any_db, router, priority="high")
    with any_db.begin() as conn:
        assert conn.execute(text("SELECT priority FROM background_jobs")).scalars().all() == ["high"]


def test_the_priority_rule_is_the_stacks_lane_rule() -> None:
    """One side's output fed to the other: every name the stack accepts for a lane is accepted at publish,
    and every name it refuses is refused there too."""
    from db.preparation import check_priority
    from stacks.settings import SettingsError

    for name in ["high", "p1", "very-urgent", "a" * 24, "a" * 25, "High", "bulk_import", "-x", "x--y", "9lives", ""]:
        try:
            load_settings(cdk_context(dev={"pools": {"lane": {"priority": name}}}), "dev")
            stack_accepts = True
        except SettingsError:
            stack_accepts = False
        try:
            check_priority(name)
            publish_accepts = True
        except ValueError:
            publish_accepts = False
        assert (name, stack_accepts) == (name, publish_accepts)


@pytest.mark.parametrize("entry", ["publish", "enqueue"])
def test_a_negative_delay_is_refused_as_the_cli_refuses_it(any_db: DB, queue: Queue, entry: str) -> None:
    with pytest.raises(ValueError, match=r"^delay must be zero or more, got -5 s: it runs the job later$"):
        ENTRIES[entry](any_db, queue, delay=timedelta(seconds=-5))
    assert _rows(any_db) == 0
    later = ENTRIES[entry](any_db, queue, delay=timedelta(0))
    assert later.status is JobStatus.PENDING


@pytest.mark.parametrize("entry", ["publish", "enqueue"])
def test_publish_and_enqueue_take_the_same_options(any_db: DB, queue: Queue, entry: str) -> None:
    """One options type (JobOptions) for both: enqueue had no run_at or delay, which publish had."""
    from datetime import UTC, datetime

    later = ENTRIES[entry](any_db, queue, run_at=datetime.now(UTC) + timedelta(hours=2))
    soon = ENTRIES[entry](any_db, queue, delay=timedelta(hours=3))
    assert {later.status, soon.status} == {JobStatus.SCHEDULED}
    assert soon.run_at is not None and later.run_at is not None and soon.run_at > later.run_at
    with pytest.raises(TypeError, match=r"^unknown job option 'prioity': the options are delay_seconds, "):
        ENTRIES[entry](any_db, queue, prioity="high")
    assert _rows(any_db) == 2


@pytest.mark.parametrize("entry", ["publish", "publish_many", "enqueue"])
def test_after_takes_an_id_its_text_or_a_job_and_refuses_anything_else(any_db: DB, queue: Queue, entry: str) -> None:
    first = publish(any_db, "test-echo", {}, queue=queue)
    with pytest.raises((ValueError, InvalidBatchItem)) as caught:
        ENTRIES[entry](any_db, queue, after=["not-a-job-id"])
    assert _one_line(caught.value) == "after= names jobs by id (a UUID, its text, or a Job): 'not-a-job-id' is not one"
    assert _rows(any_db) == 1
    for form in (first.id, str(first.id), first):
        waiting = ENTRIES[entry](any_db, queue, after=[form])
        job = waiting[0] if isinstance(waiting, list) else waiting
        found = get_job(any_db, job.id)
        assert found is not None and found.status is JobStatus.WAITING and found.waiting_on == 1
    with pytest.raises(UnknownPrerequisite, match="which does not exist"):
        ENTRIES[entry](any_db, queue, after=[uuid.uuid4()])
