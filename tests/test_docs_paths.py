"""The architecture page and the layout page name files; a rename or a split must carry them along, or
the next reader follows a path that no longer exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent
_PATH = re.compile(r"`?((?:db|worker|stacks|cli|tests|bench|docs|examples)/[\w/.-]+\.(?:py|md))")


def _named(text: str) -> set[str]:
    return {m.group(1) for m in _PATH.finditer(text)}


def test_every_file_the_architecture_page_names_exists() -> None:
    named = _named((ROOT / "docs" / "architecture.md").read_text())
    assert len(named) >= 15
    assert sorted(p for p in named if not (ROOT / p).is_file()) == []


def test_every_module_the_layout_page_names_exists() -> None:
    layout = (ROOT / "docs" / "design" / "layout.md").read_text()
    for row in layout.splitlines():
        folder = re.match(r"\| `(db|worker|stacks|cli)/` \|", row)
        if folder is None:
            continue
        names = set(re.findall(r"`(\w+\.py)`", row))
        missing = [n for n in names if not (ROOT / folder.group(1) / n).is_file()]
        assert names and missing == [], (folder.group(1), missing)
