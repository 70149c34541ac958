"""`db.repository` was split by caller (db/lifecycle.py, db/relay.py, db/admin.py, db/clock.py); the old
import path is kept as a deprecated alias, so an app's `from db.repository import claim_job` keeps working
and is told where the name lives now."""

from __future__ import annotations

import importlib
import sys

import pytest

import db

pytestmark = pytest.mark.unit


def test_the_old_module_warns_and_gives_the_same_functions() -> None:
    sys.modules.pop("db.repository", None)
    with pytest.warns(DeprecationWarning, match="db.repository is deprecated: import from db"):
        repository = importlib.import_module("db.repository")
    for name in repository.__all__:
        if hasattr(db, name):
            assert getattr(repository, name) is getattr(db, name), name
    assert repository.claim_job is db.claim_job and repository.mark_sent is db.mark_sent
