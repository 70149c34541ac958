"""Old import paths kept working after a module was split: a name is looked up where it lives now, with a
DeprecationWarning that says where, so an app's imports keep running while its owners move them."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping


def moved_names(old: str, moved: Mapping[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` for the split module `old` (e.g. "db.repository"): `moved` maps each name it
    held to the module of its package that holds it now."""
    package = old.rsplit(".", 1)[0]

    def __getattr__(name: str) -> object:
        if name not in moved:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        home = f"{package}.{moved[name]}"
        warnings.warn(f"{old} is deprecated: import {name} from {home}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(home), name)

    return __getattr__
