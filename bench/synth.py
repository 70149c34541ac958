"""Synth time: `cdk synth` of all three environments, cold (no bundle cache) and warm, against `cdk synth`
of an empty CDK app in the same run (the floor: Node, jsii and the CLI starting). Also the asset's size.

Target: warm synth of all three environments at most 1.5x the empty app.

    .venv/bin/python -m bench.synth [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import write_section
from stacks.bundling import CACHE, BundleSpec, build_bundle, bundle_size

ROOT = Path(__file__).resolve().parent.parent
EMPTY_APP = "import aws_cdk as cdk\napp = cdk.App()\ncdk.Stack(app, 'Empty')\napp.synth()\n"


def cdk_synth(cwd: Path) -> float:
    env = os.environ | {"PATH": f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    subprocess.run(["cdk", "synth", "--quiet"], cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def largest_packages(directory: Path, n: int = 5) -> list[tuple[str, int]]:
    sizes = {
        p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
        for p in directory.iterdir()
        if not p.name.endswith(".dist-info")
    }
    return sorted(sizes.items(), key=lambda kv: -kv[1])[:n]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp)
        (empty / "app.py").write_text(EMPTY_APP)
        (empty / "cdk.json").write_text(json.dumps({"app": f"{sys.executable} app.py"}))
        cdk_synth(empty)  # warm the OS file cache for node and jsii
        floors, colds, warms = [], [], []
        for _ in range(args.runs):
            floors.append(cdk_synth(empty))
            shutil.rmtree(CACHE, ignore_errors=True)
            shutil.rmtree(ROOT / "cdk.out", ignore_errors=True)
            colds.append(cdk_synth(ROOT))
            warms.append(cdk_synth(ROOT))
    floor, cold, warm = statistics.median(floors), statistics.median(colds), statistics.median(warms)

    with tempfile.TemporaryDirectory() as tmp:
        asset = build_bundle(BundleSpec("3.13", "arm64"), Path(tmp) / "asset")
        unzipped, zipped = bundle_size(asset)
        largest = largest_packages(asset)
    biggest = ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in largest)
    body = f"""
| figure | result | target |
|---|---|---|
| `cdk synth` of an empty CDK app (the floor) | {floor:.2f} s | |
| `cdk synth`, 3 environments, cold (no bundle cache, no cdk.out) | {cold:.2f} s ({cold / floor:.2f}x) | |
| `cdk synth`, 3 environments, warm | {warm:.2f} s (**{warm / floor:.2f}x**) | ≤ 1.5x |
| asset (python3.13, arm64), zipped | {zipped / 1e6:.2f} MB | < 12 MB, no boto3, with bytecode |
| asset, unzipped | {unzipped / 1e6:.2f} MB | |
| largest five packages in the asset | {biggest} | |

Median of {args.runs} interleaved runs. Cold includes downloading nothing: pip reads wheels from its cache
after the first run on a machine; a first-ever bundle also downloads the wheels it has not cached.
"""
    print(body)
    write_section("synth", "make bench  (or: .venv/bin/python -m bench.synth)", body)


if __name__ == "__main__":
    main()
