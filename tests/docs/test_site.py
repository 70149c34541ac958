"""The documentation site builds with no warning: a broken link, a missing anchor, a page left out of the
navigation or an API entry that no longer resolves fails `mkdocs build --strict` (what `make docs` runs).
Run here rather than before the tests, so the build shares the machine with them instead of adding to
`make test`'s time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_the_site_builds_with_no_warning(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=os.environ | {"NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert "WARNING" not in built.stderr, built.stderr
    pages = {p.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site").rglob("index.html")}
    assert {"index.html", "getting-started/index.html", "reference/python-api/index.html"} <= pages
    api = (tmp_path / "site" / "reference" / "python-api" / "index.html").read_text()
    assert "idempotency_key" in api and "register_job_type" in api  # generated from the code's signatures
