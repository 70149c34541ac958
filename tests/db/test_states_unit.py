"""No module but db/states.py writes a derived state's rule (the issue found "failed for good" written nine
times in three forms: SQL text, SQLAlchemy, Python); tests/db/test_states.py checks the three forms agree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from db.states import CLAIMABLE, State

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


#: A rule's own text: `attempts` against `max_attempts`, and the finished statuses listed together.
_RULE_TEXT = re.compile(r"attempts\s*[<>]=?\s*[\w.]*max_attempts|status\s+IN\s*\(\s*'completed'", re.IGNORECASE)


def _rule_writings(path: Path) -> list[str]:
    """Where a module writes a state's rule itself: a comparison of attempts with max_attempts in code, or
    the rule's SQL in a string that is not a docstring."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            names = [ast.unparse(n).rsplit(".", 1)[-1] for n in (node.left, *node.comparators)]
            if {"max_attempts"} & set(names) and {"attempts", "attempt"} & set(names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and _RULE_TEXT.search(node.value)
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}")
    return found


def test_no_module_writes_a_states_rule_again() -> None:
    modules = [
        p
        for folder in ("db", "worker", "cli", "stacks")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if "migrations" not in p.parts and p != ROOT / "db" / "states.py"
    ]
    assert len(modules) > 100
    assert [w for p in modules for w in _rule_writings(p)] == []
    # The finder finds: the rule module itself writes each comparison.
    assert _rule_writings(ROOT / "db" / "states.py")


def test_the_claim_rule_reads_as_one_sentence() -> None:
    """What a reviewer reads when the claim's statement is printed (lifecycle's statements embed it)."""
    assert CLAIMABLE.sql() == (
        "((status = 'pending' AND (run_at IS NULL OR run_at <= :due_by)) OR ((status = 'failed' OR (status = "
        "'processing' AND COALESCE(heartbeat_at < :silent_before, started_at < :stale_before, false))) AND "
        "attempts < max_attempts))"
    )
    assert isinstance(CLAIMABLE, State)


def test_the_worker_never_asks_which_database_it_runs_on() -> None:
    """Dialect decisions are the database layer's (db/lifecycle.py:
    in_one_statement; db/claiming/ for the claim); the worker acts on them."""
    asking = re.compile(r"\.dialect\b|dialect\s*[!=]=")
    found = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in sorted((ROOT / "worker").rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if asking.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == []
