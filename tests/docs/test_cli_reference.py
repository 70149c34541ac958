"""The command reference has a row for every command the CLI accepts: a command a reader cannot find is a
command they do not have."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from cli.parser import build_parser

pytestmark = pytest.mark.unit
PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "cli.md"


def test_every_command_has_a_row_in_the_table() -> None:
    [commands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    rows = {m for line in PAGE.read_text().splitlines() if line.startswith("| `") for m in
            re.findall(r"`jobstack ([a-z-]+)", line.split("|")[1])}  # fmt: skip
    assert sorted(set(commands.choices) - rows) == []
    assert sorted(rows - set(commands.choices)) == []
