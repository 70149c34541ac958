"""Benchmarks of this commit side by side with an earlier one, in the same run.

A change that claims "no regression" is measured against the commit before it on the same machine at the
same time: each side is checked out into a worktree of its own (so neither writes this tree's
docs/benchmarks.md), and each benchmark runs base, head, base, head ... so that a machine growing busier
weighs on both alike. Every benchmark prints its tables; each figure (a table row's first cell) is read
from the first number of its row, and the section shows each side's median over the rounds and head's
ratio to base.

    .venv/bin/python -m bench.side_by_side --base REV [--rounds 2] [--benches cold_start,flow_control,ceiling]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.report import write_section

ROOT = Path(__file__).resolve().parent.parent
#: Each benchmark with the arguments it runs with here (shorter runs than its own defaults, interleaved),
#: and the columns of its tables' rows that are figures (0: the first cell after the row's name), by label.
BENCHES: dict[str, tuple[list[str], dict[int, str]]] = {
    "cold_start": (["--runs", "9", "--jobs", "1000", "--rounds", "3"], {0: ""}),
    "flow_control": (["--rounds", "1000", "--no-write"], {1: ", ms"}),
    "ceiling": (
        ["--seconds", "3", "--rounds", "1", "--processes", "2,8"],
        {0: " processes, jobs/s, 2 statements", 1: " processes, jobs/s, per job", 2: " processes, jobs/s, batched"},
    ),
}
_ROW = re.compile(r"^\|\s*(?P<name>[^|]+?)\s*\|(?P<rest>.*)\|\s*$")
_NUMBER = re.compile(r"(\d[\d,]*\.?\d*)\s*(ms|s|x|%)?")


def figures(output: str, columns: dict[int, str]) -> dict[str, tuple[float, str]]:
    """Each table row's figures: its name (first cell) with the column's label, and the column's number
    with its unit. A header, a rule and a cell without a number are skipped; a name seen twice keeps its
    first row."""
    found: dict[str, tuple[float, str]] = {}
    for line in output.splitlines():
        row = _ROW.match(line)
        if row is None or set(row["name"]) <= set("-: "):
            continue
        cells = [cell.replace("**", "").strip() for cell in row["rest"].split("|")]
        for column, label in columns.items():
            number = _NUMBER.fullmatch(cells[column]) if column < len(cells) else None
            if number is not None and f"{row['name']}{label}" not in found:
                found[f"{row['name']}{label}"] = (float(number[1].replace(",", "")), number[2] or "")
    return found


def _worktree(rev: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(where), rev], check=True,
                   capture_output=True)  # fmt: skip
    return where


def _run(tree: Path, bench: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", f"bench.{bench}", *BENCHES[bench][0]], cwd=tree, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"bench.side_by_side: bench.{bench} failed in {tree}: {out.stderr.strip()[-400:]}")
    return out.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit to compare with (a hash, a tag, HEAD~3)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--benches", default=",".join(BENCHES))
    args = parser.parse_args(argv)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    base = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.base], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    sections = []
    with tempfile.TemporaryDirectory(prefix="jobstack-side-by-side-") as tmp:
        trees = {side: _worktree(rev, Path(tmp) / side) for side, rev in (("base", base), ("head", head))}
        try:
            for bench in args.benches.split(","):
                runs: dict[str, list[dict[str, tuple[float, str]]]] = {"base": [], "head": []}
                for _ in range(args.rounds):
                    for side in ("base", "head"):
                        runs[side].append(figures(_run(trees[side], bench), BENCHES[bench][1]))
                        print(bench, side, runs[side][-1], flush=True)
                sections.append(_table(bench, runs))
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    body = (
        f"This commit ({head}) against {base}, {args.rounds} interleaved rounds of each benchmark, medians; "
        "a ratio is head over base (for a time, below 1 is faster; for a rate, above 1 is faster).\n\n"
        + "\n\n".join(sections)
    )
    print(body)
    write_section("side by side", f".venv/bin/python -m bench.side_by_side --base {args.base}", body)
    return 0


def _table(bench: str, runs: dict[str, list[dict[str, tuple[float, str]]]]) -> str:
    names = [name for name in runs["head"][0] if all(name in r for side in runs.values() for r in side)]
    lines = [f"`bench.{bench} {' '.join(BENCHES[bench][0])}`", "", "| figure | base | head | head / base |",
             "|---|---|---|---|"]  # fmt: skip
    for name in names:
        unit = runs["head"][0][name][1]
        base = statistics.median(r[name][0] for r in runs["base"])
        head = statistics.median(r[name][0] for r in runs["head"])
        ratio = f"{head / base:.2f}" if base else "n/a"
        lines.append(f"| {name} | {base:,.4g} {unit} | {head:,.4g} {unit} | {ratio} |")
    floor, first = (
        "`import sqlalchemy, psycopg, pydantic` (the floor)",
        "import + first invocation (first connection, one job)",
    )
    ratio_name = "import + first invocation / the floor"  # a row of cold_start's own table since it has one
    if floor in names and first in names and ratio_name not in names:  # the cold start's target
        per_side = [statistics.median(r[first][0] / r[floor][0] for r in runs[side]) for side in ("base", "head")]
        lines.append(f"| {ratio_name} | {per_side[0]:.2f}x | {per_side[1]:.2f}x | |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
