"""The "before" for `make diff`: the committed snapshot of one environment, with the code asset it was taken with.

`make diff ENV=dev` runs `cdk diff --template <this output> JobsStack-dev`: the reviewer's view of what a
change does to the stack, offline and without credentials. The snapshot masks asset hashes (so code changes
do not churn it); `make snapshot` records each environment's code asset hash beside it (CODE_ASSETS), and
that hash is put back here. A change to the worker's code, `db/` or the pinned requirements therefore shows
as each function's `S3Key` changing in the diff, and as one line per function printed first; an unchanged
asset stays quiet.

    .venv/bin/python -m tests.infra.diff_base dev cdk.out/diff-base-dev.json
    .venv/bin/python -m tests.infra.diff_base record      # after `make synth`: what `make snapshot` runs
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from tests.infra.normalise import ASSET_PLACEHOLDER

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = Path(__file__).resolve().parent / "__snapshots__" / "test_snapshot"
CODE_ASSETS = Path(__file__).resolve().parent / "code_assets.json"  # not in __snapshots__: syrupy owns that
ENVIRONMENTS = ("dev", "staging", "prod")
_S3_KEY = re.compile(r"^([0-9a-f]{64})\.zip$")


def function_assets(template: dict[str, Any]) -> dict[str, str]:
    """Each function's logical id (with its construct path, when known) → its code asset hash."""
    assets = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        key = resource["Properties"].get("Code", {}).get("S3Key")
        found = _S3_KEY.match(key) if isinstance(key, str) else None
        if found:
            path = resource.get("Metadata", {}).get("aws:cdk:path", logical_id)
            assets[str(path).removesuffix("/Resource")] = found.group(1)
    return assets


def code_changes(recorded: str | None, template: dict[str, Any]) -> list[str]:
    """One line per function whose code asset differs from the recorded one."""
    if recorded is None:
        return ["code assets: none recorded for this snapshot (run `make snapshot`); code changes are not shown"]
    return [
        f"code changed: {path} asset {recorded[:12]}… → {current[:12]}… (worker/, db/ or the pinned requirements)"
        for path, current in sorted(function_assets(template).items())
        if current != recorded
    ]


def recorded_asset(env: str) -> str | None:
    if not CODE_ASSETS.exists():
        return None
    value = json.loads(CODE_ASSETS.read_text()).get(env)
    return str(value) if value else None


def _current_template(env: str) -> dict[str, Any] | None:
    path = ROOT / "cdk.out" / f"JobsStack-{env}.template.json"
    return json.loads(path.read_text()) if path.exists() else None


def write_base(env: str, output: Path) -> int:
    snapshot = SNAPSHOTS / f"test_template_matches_the_snapshot[{env}].json"
    if not snapshot.exists():
        print(f"error: no snapshot for environment {env!r} ({snapshot.relative_to(ROOT)})", file=sys.stderr)
        return 2
    template = _current_template(env)
    current = sorted(set(function_assets(template).values())) if template else []
    if not template or len(current) != 1:
        print(f"error: no synthesized template for JobsStack-{env} in cdk.out: run `make synth` first", file=sys.stderr)
        return 2
    recorded = recorded_asset(env)
    for line in code_changes(recorded, template):
        print(line)
    output.write_text(snapshot.read_text().replace(ASSET_PLACEHOLDER, recorded or current[0]))
    return 0


def record() -> int:
    """Write each environment's current code asset hash (from cdk.out) beside the snapshots."""
    assets = {}
    for env in ENVIRONMENTS:
        template = _current_template(env)
        hashes = sorted(set(function_assets(template).values())) if template else []
        if len(hashes) != 1:
            print(f"error: no synthesized template for JobsStack-{env} in cdk.out: run `make synth`", file=sys.stderr)
            return 2
        assets[env] = hashes[0]
    CODE_ASSETS.write_text(json.dumps(assets, indent=2, sort_keys=True) + "\n")
    return 0


def main(argv: list[str]) -> int:
    if argv == ["record"]:
        return record()
    if len(argv) != 2:
        print("usage: python -m tests.infra.diff_base ENV OUTPUT | record", file=sys.stderr)
        return 2
    return write_base(argv[0], Path(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
