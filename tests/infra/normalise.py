"""Template normalisation shared by the snapshot tests and `make diff`."""

from __future__ import annotations

import json
import re
from typing import Any

ASSET_PLACEHOLDER = "ASSET_HASH"
_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def normalise(template: dict[str, Any]) -> dict[str, Any]:
    """The template with every 64-hex asset hash replaced, so code changes do not churn the snapshot."""
    normalised: dict[str, Any] = json.loads(_HASH.sub(ASSET_PLACEHOLDER, json.dumps(template)))
    return normalised
