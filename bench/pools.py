"""What each worker pool adds to JobsStack-dev's template: resources and template bytes for 1, 2 and 3 pools,
and which resource types each extra pool brings. Sizing against CloudFormation's 500 resources and 1 MB.

    .venv/bin/python -m bench.pools
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.report import write_section
from tests.infra.conftest import cdk_context
from tests.infra.variants import stack_template, synth_app

CONFIGURATIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("default only", {}),
    ("+ video", {"video": {"types": ["video.transcode"], "timeout_seconds": 900}}),
    (
        "+ video, ledger (FIFO)",
        {"video": {"types": ["video.transcode"], "timeout_seconds": 900}, "ledger": {"types": ["l"], "fifo": True}},
    ),
)


def main() -> None:
    templates = []
    with tempfile.TemporaryDirectory() as out:
        for index, (_, pools) in enumerate(CONFIGURATIONS):
            context = cdk_context(dev={"pools": pools}) if pools else cdk_context()
            templates.append(stack_template(synth_app(Path(out) / str(index), context), "dev"))
    rows = [
        f"| {name} | {len(t['Resources'])} | {len(json.dumps(t)):,} |"
        for (name, _), t in zip(CONFIGURATIONS, templates, strict=True)
    ]
    added = Counter(r["Type"] for r in templates[1]["Resources"].values()) - Counter(
        r["Type"] for r in templates[0]["Resources"].values()
    )
    body = f"""
JobsStack-dev's synthesized template with its pools (cdk.json's dev settings otherwise):

| pools | resources | template bytes |
|---|---|---|
{chr(10).join(rows)}

One extra pool adds {sum(added.values())} resources: {", ".join(f"{n} {t}" for t, n in sorted(added.items()))}.
CloudFormation allows 500 resources per stack, hence the settings' limit of 30 pools.
"""
    print(body)
    write_section("pools", ".venv/bin/python -m bench.pools", body)


if __name__ == "__main__":
    main()
