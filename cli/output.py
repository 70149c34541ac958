"""Readable tables for people, JSON for scripts, and a progress bar on long operations (on stderr, and
only on a terminal, so piping `--json` output stays clean)."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any, TextIO
from uuid import UUID


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID | Enum):
        return str(value.value if isinstance(value, Enum) else value)
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def emit_json(data: Any, out: TextIO | None = None) -> None:
    (out or sys.stdout).write(json.dumps(_plain(data), indent=2, default=str) + "\n")


def table(
    rows: Sequence[Sequence[Any]], headers: Sequence[str], out: TextIO | None = None, *, width: int | None = None
) -> None:
    """Columns padded to their widest cell; on a terminal (or with `width`), the widest columns are cut
    (ending in `…`) until a row fits the line, so nothing wraps into a mess. An `id` column is never cut:
    an id is what a reader copies into the next command."""
    stream = out or sys.stdout
    cells = [[_cell(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    if width is None and stream.isatty():
        width = shutil.get_terminal_size().columns
    if width is not None:
        whole = {i for i, h in enumerate(headers) if h == "id"}
        widths = fit_widths(widths, width - 2 * (len(widths) - 1), whole=whole)
        cells = [[_cut(c, w) for c, w in zip(row, widths, strict=True)] for row in cells]
        headers = [_cut(h, w) for h, w in zip(headers, widths, strict=True)]
    stream.write("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        stream.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    if not cells:
        stream.write("(none)\n")


def fit_widths(
    widths: Sequence[int], budget: int, *, minimum: int = 6, whole: set[int] | frozenset[int] = frozenset()
) -> list[int]:
    """Narrow the widest column, one character at a time, until the columns fit `budget` (or all are at
    `minimum`): short columns (status, counts) stay whole, long ones (errors) give way; the columns in
    `whole` never do."""
    fitted = list(widths)
    narrowable = [i for i in range(len(fitted)) if i not in whole]
    while narrowable and sum(fitted) > budget:
        widest = max(narrowable, key=lambda i: fitted[i])
        if fitted[widest] <= minimum:
            break
        fitted[widest] -= 1
    return fitted


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def fields(pairs: Iterable[tuple[str, Any]], out: TextIO | None = None) -> None:
    """One field a line, each value whole (`jobstack show` is where an operator reads a job's error: a table
    cuts, this does not); a value's further lines are indented under its first."""
    items = [(k, _cell(v, whole=True)) for k, v in pairs]
    width = max((len(k) for k, _ in items), default=0)
    stream = out or sys.stdout
    for key, value in items:
        stream.write(f"{key.ljust(width)}  {value.replace(chr(10), chr(10) + ' ' * (width + 2))}\n")


def _cell(value: Any, *, whole: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    text = str(value)
    return text if whole or len(text) <= 80 else text[:77] + "..."


class Progress:
    """`done/total` with a bar, redrawn in place; silent when stderr is not a terminal."""

    def __init__(self, total: int | None, label: str, stream: TextIO | None = None) -> None:
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        if self.total:
            filled = int(30 * self.done / self.total)
            bar = "#" * filled + "." * (30 - filled)
            self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
        else:
            self.stream.write(f"\r{self.label} {self.done}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
