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

import aws_cdk as cdk

from bench.report import write_section
from stacks.app_factory import build_app
from stacks.overrides import OVERRIDES

ROOT = Path(__file__).resolve().parent.parent
#: What the CDK CLI adds to an app's context, so these templates are the ones `cdk synth` writes.
CLI_CONTEXT = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
}

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
            templates.append(_dev_template(Path(out) / str(index), pools))
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


def _dev_template(outdir: Path, pools: dict[str, Any]) -> dict[str, Any]:
    """JobsStack-dev as `cdk synth -c jobstack-overrides='{"dev": {"pools": ...}}'` writes it."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"] | CLI_CONTEXT
    if pools:
        context[OVERRIDES] = {"dev": {"pools": pools}}
    assembly = build_app(cdk.App(outdir=str(outdir), context=context)).synth()
    template: dict[str, Any] = assembly.get_stack_by_name("JobsStack-dev").template
    return template


if __name__ == "__main__":
    main()
