"""`db.repository` was split by caller (db/lifecycle.py, db/relay.py, db/admin.py, db/clock.py) and
`db.outgoing` by what it held; the old import paths are kept as deprecated aliases, so an app's
`from db.repository import claim_job` keeps working and is told where the name lives now."""

from __future__ import annotations

import importlib

import pytest

import db

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("old", ["db.repository", "db.outgoing"])
def test_the_old_module_gives_the_same_objects_and_says_where_they_live(old: str) -> None:
    module = importlib.import_module(old)
    for name in module.__all__:
        with pytest.warns(DeprecationWarning, match=f"{old} is deprecated: import {name} from db"):
            value = getattr(module, name)
        if hasattr(db, name):
            assert value is getattr(db, name), name
    with pytest.warns(DeprecationWarning, match="import claim_job from db.lifecycle"):
        from db.repository import claim_job
    assert claim_job is db.claim_job
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        module.nothing_here  # noqa: B018


def test_every_name_the_old_modules_held_is_still_there() -> None:
    """The names as they were before the split (db/repository.py and db/outgoing.py at 608dd83)."""
    repository = importlib.import_module("db.repository")
    outgoing = importlib.import_module("db.outgoing")
    assert {"claim_job", "complete_and_claim", "take_for_resend", "requeue_job", "utcnow", "JobTypes"} <= set(
        repository.__all__
    )
    assert {"Queue", "Destination", "JobRequest", "send_all", "prepare", "SQS_MAX_MESSAGE_BYTES"} <= set(
        outgoing.__all__
    )
