"""The settings reference names every setting `cdk.json` accepts, and nothing else: `rate_limits` was once
accepted by the stack and missing from the table, so a reader could not find it."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from stacks.settings_model import Settings

pytestmark = pytest.mark.unit
PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "settings.md"
#: Fields the stack fills in itself, never read from cdk.json.
DERIVED = {"env_name", "known_priorities"}


def _documented() -> set[str]:
    keys: set[str] = set()
    for row in PAGE.read_text().splitlines():
        if row.startswith("| `"):
            keys |= set(re.findall(r"`(\w+)`", row.split("|")[1]))
    return keys


def test_every_setting_has_a_row_and_every_row_is_a_setting() -> None:
    accepted = {f.name for f in fields(Settings)} - DERIVED
    assert sorted(accepted - _documented()) == []
    assert sorted(_documented() - accepted) == []
