"""Every install instruction we print names our package by a path, a wheel or its own distribution name,
never a bare name an index could resolve to someone else's project.

`jobstack` on PyPI is an unrelated project (0.1.1, 2019), also importing as `jobstack`: `pip install
"jobstack[web]"` would install it, and whoever owns that name would decide what our users run
(dependency confusion). Our distribution is `jobstack-sqs`, on no index.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from tests.support.distribution import DISTRIBUTION

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
_INSTALL = re.compile(r"pip3? install\s+([^`\n]*)")


def install_lines() -> list[tuple[str, str]]:
    """(file, arguments) of every `pip install` in the README, the docs and the examples."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "examples").rglob("*.py"))]
    files += sorted((ROOT / "examples").rglob("*.md"))
    return [(str(f.relative_to(ROOT)), m.group(1)) for f in files for m in _INSTALL.finditer(f.read_text())]


def ours_by_bare_name(arguments: str) -> list[str]:
    """The requirements among `arguments` that name this project without a path, a wheel or our name."""
    wrong = []
    for word in shlex.split(arguments.split("#")[0]):
        if word.startswith("-"):
            continue
        name = re.split(r"[\[<>=!~;@ ]", word, maxsplit=1)[0]
        is_path = "/" in word or word.startswith(".") or word.endswith((".whl", ".whl]")) or ".whl[" in word
        if "jobstack" in name.lower() and not is_path and name.lower() != DISTRIBUTION:
            wrong.append(word)
    return wrong


def test_every_install_line_names_a_path_a_wheel_or_our_own_name() -> None:
    lines = install_lines()
    assert len(lines) >= 4, lines  # the README's two and each example's
    assert [(f, a) for f, a in lines if ours_by_bare_name(a)] == []


def test_the_check_catches_a_bare_name() -> None:
    assert ours_by_bare_name('"jobstack[web]" flask') == ["jobstack[web]"]
    assert ours_by_bare_name("jobstack==0.1.0") == ["jobstack==0.1.0"]
    assert ours_by_bare_name('"./jobstack[web]" "dist/jobstack_sqs-0.1.0-py3-none-any.whl[web]" jobstack-sqs') == []


def test_the_distribution_and_its_extras_use_our_name() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION
    assert project["optional-dependencies"]["web"] == [f"{DISTRIBUTION}[postgres,sqs]"]
