"""Our distribution's name resolves only to our own wheel: pip, with no index, finds nothing under it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.distribution import DISTRIBUTION

pytestmark = pytest.mark.e2e


def test_our_distribution_name_resolves_on_no_index(tmp_path: Path) -> None:
    """If anyone ever publishes `jobstack-sqs`, this fails: the instructions must then change name again."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "-d", str(tmp_path), DISTRIBUTION],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "No matching distribution found for jobstack-sqs" in result.stderr, result.stdout
