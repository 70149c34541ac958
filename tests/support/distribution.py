"""Our distribution's name, written here as the install instructions must spell it (not read from
pyproject.toml, which the tests check against it)."""

from __future__ import annotations

DISTRIBUTION = "jobstack-sqs"
