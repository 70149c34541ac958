"""`jobstack` dispatches every command through one table (cli/main.py COMMANDS): a command the parser accepts
but the table lacks would fail with a KeyError traceback, and an entry whose function moved would fail only
when a user runs it."""

from __future__ import annotations

import importlib
import inspect

import pytest

from cli.commands.completion import _subparsers
from cli.main import COMMANDS
from cli.parser import build_parser

pytestmark = pytest.mark.unit


def test_every_command_the_parser_accepts_has_one_entry_and_the_entry_resolves() -> None:
    assert set(_subparsers(build_parser())) == set(COMMANDS)
    for name, command in COMMANDS.items():
        handler = getattr(importlib.import_module(command.module), command.function)
        parameters = list(inspect.signature(handler).parameters)
        expected = ["args", "target"] if command.target else ["args"]
        assert parameters[: len(expected)] == expected, name
        assert {key for key, _ in command.extra} <= set(parameters), name
