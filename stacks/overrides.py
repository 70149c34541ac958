"""Settings for one deploy without editing cdk.json: `cdk deploy -c jobstack-overrides='{"dev": {...}}'`
(the local rehearsal names the secret it created, and may add pools), laid over each environment's
settings and validated like the rest. The `jobstack` CLI reads the same JSON from $JOBSTACK_OVERRIDES, so its
commands see the settings that deploy used. No aws_cdk here: the CLI imports it.
"""

from __future__ import annotations

import json
from typing import Any

from stacks.settings import SettingsError

OVERRIDES = "jobstack-overrides"
OVERRIDES_VARIABLE = "JOBSTACK_OVERRIDES"


def with_overrides(jobstack: Any, overrides: Any) -> Any:
    """cdk.json's `jobstack` object with each environment's overrides laid over it."""
    if overrides is None:
        return jobstack
    try:
        parsed = json.loads(overrides) if isinstance(overrides, str) else overrides
    except json.JSONDecodeError as err:
        raise SettingsError(f'-c {OVERRIDES} is not JSON ({err.msg}): pass \'{{"dev": {{"key": value}}}}\'') from None
    if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
        raise SettingsError(f"-c {OVERRIDES} must map environment names to objects of settings")
    merged = json.loads(json.dumps(jobstack or {}))
    environments = merged.setdefault("environments", {})
    for env, values in parsed.items():
        if env not in environments:
            raise SettingsError(f"-c {OVERRIDES} names environment {env!r}, which cdk.json does not define")
        environments[env] = {**(environments[env] or {}), **values}
    return merged
