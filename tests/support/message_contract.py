"""The publisher contract for other languages (docs/contract/), as the tests read it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: The JSON Schema of a job message, published for publishers in other languages.
SCHEMA: dict[str, Any] = json.loads((ROOT / "docs" / "contract" / "job-message.schema.json").read_text())
