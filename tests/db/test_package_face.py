"""The package's face (db/__init__.py) imports publishing, the outbox, workflows and the admin queries on
first use: what type checkers read and what runs must name the same things, and a name must give the
object, never a submodule that happens to share it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import db

pytestmark = pytest.mark.unit
FACE = Path(db.__file__)


def _type_checking_imports() -> dict[str, str]:
    tree = ast.parse(FACE.read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    return {
        alias.asname or alias.name: (node.module or "")
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_the_lazy_names_are_the_ones_type_checkers_read() -> None:
    assert _type_checking_imports() == db._LAZY
    assert set(db._LAZY) <= set(db.__all__), "a lazy name left out of __all__ would not be public"


def test_every_public_name_resolves_to_the_object_its_module_defines() -> None:
    for name in db.__all__:
        value = getattr(db, name)
        assert not isinstance(value, type(sys)), f"db.{name} is a module, not the name it exports"


def test_the_worker_loads_none_of_it_and_a_submodule_imported_first_does_not_shadow_its_name() -> None:
    """The worker's import loads none of what only publishers and operators use. Then `db.publishing`,
    which the worker imports only when it sends released jobs: `from db import publish` afterwards still
    gives the function (a module named like the function would have shadowed it)."""
    code = (
        "import sys, worker.handler; print(sorted(m for m in sys.modules if m.startswith('db.')));"
        "import db.publishing; from db import publish, Queue;"
        "assert callable(publish) and publish.__module__ == 'db.publishing', publish;"
        "print(sorted(m for m in ('db.admin', 'db.workflows') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, after = out.stdout.strip().splitlines()
    never = {"db.admin", "db.after_commit", "db.outbox", "db.preparation", "db.publishing", "db.workflows"}
    assert not set(ast.literal_eval(loaded)) & never, loaded
    assert after == "['db.workflows']"  # publishing writes workflows; the admin queries stay out
