"""What a newcomer waits for: the getting-started commands timed on a fresh clone, as a range over rounds.

A figure measured on a warm checkout (a venv, node_modules and a bundle already there) says nothing about a
first run, which pays for the installs and the first bundle. Each round clones this repository's HEAD into an
empty directory and runs the getting-started page's commands in its order, timing each: `make synth`,
`make local`, `make deploy-local`, `make destroy-local`. The machine's load average before each step is kept
beside its time, because on a 2-core machine another process's work shows in every figure.

    .venv/bin/python -m bench.fresh_clone [--rounds 2] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
#: The getting-started page's commands, in its order.
STEPS = ("make synth", "make local", "make deploy-local", "make destroy-local")


def _memory() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    return "unknown memory"


def one_round() -> dict[str, tuple[float, float]]:
    """Each step's wall time in seconds and the 1-minute load average just before it."""
    timings: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="jobstack-fresh-") as where:
        clone = Path(where) / "jobstack"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)
        try:
            for step in STEPS:
                load = os.getloadavg()[0]
                started = time.perf_counter()
                done = subprocess.run(step.split(), cwd=clone, env=env, stdin=subprocess.DEVNULL,
                                      capture_output=True, text=True, check=False)  # fmt: skip
                if done.returncode != 0:
                    sys.exit(f"{step} failed on a fresh clone (exit {done.returncode}): {done.stderr.strip()[-400:]}")
                timings[step] = (time.perf_counter() - started, load)
        finally:
            subprocess.run(["make", "destroy-local"], cwd=clone, env=env, capture_output=True, check=False)
    return timings


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def report(rounds: list[dict[str, tuple[float, float]]]) -> str:
    lines = [
        f"Each round: `git clone` of HEAD into an empty directory, then the getting-started commands in order; "
        f"machine: {machine()}, {_memory()}.",
        "",
        "| step | " + " | ".join(f"round {n + 1} (load before)" for n in range(len(rounds))) + " | range |",
        "|---|" + "---|" * len(rounds) + "---|",
    ]
    for step in STEPS:
        cells = [f"{_duration(r[step][0])} ({r[step][1]:.1f})" for r in rounds]
        seconds = [r[step][0] for r in rounds]
        low, high = _duration(min(seconds)), _duration(max(seconds))
        lines.append(f"| `{step}` | " + " | ".join(cells) + f" | {low if low == high else f'{low} to {high}'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    rounds = [one_round() for _ in range(args.rounds)]
    body = report(rounds)
    print(body)
    if not args.no_write:
        write_section("fresh clone", f".venv/bin/python -m bench.fresh_clone --rounds {args.rounds}", body)


if __name__ == "__main__":
    main()
