"""Writes the committed snapshot of one environment as a deployable-looking template for `cdk diff`.

`make diff ENV=dev` runs `cdk diff --template <this output> JobsStack-dev`: the reviewer's view of what a
change does to the stack, offline and without credentials. The snapshot's masked asset hash is filled in
with the hash of the current synth in cdk.out, so the diff shows infrastructure changes; code changes are
in the git diff itself.

    .venv/bin/python -m tests.infra.diff_base dev cdk.out/diff-base-dev.json
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tests.infra.normalise import ASSET_PLACEHOLDER

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = Path(__file__).resolve().parent / "__snapshots__" / "test_snapshot"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tests.infra.diff_base ENV OUTPUT", file=sys.stderr)
        return 2
    env, output = argv
    snapshot = SNAPSHOTS / f"test_template_matches_the_snapshot[{env}].json"
    if not snapshot.exists():
        print(f"error: no snapshot for environment {env!r} ({snapshot.relative_to(ROOT)})", file=sys.stderr)
        return 2
    current = ROOT / "cdk.out" / f"JobsStack-{env}.template.json"
    found = re.search(r'"S3Key": "([0-9a-f]{64})\.zip"', current.read_text()) if current.exists() else None
    if found is None:
        print(f"error: no synthesized template at {current.relative_to(ROOT)}: run `make synth` first", file=sys.stderr)
        return 2
    Path(output).write_text(snapshot.read_text().replace(ASSET_PLACEHOLDER, found.group(1)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
