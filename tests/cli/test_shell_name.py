"""The CLI runs by its name from a shell, the way a newcomer runs it: `source .venv/bin/activate`, then
`jobstack ...`. Reported: the name was `jobs`, which bash and zsh keep for their job-control builtin, so
`jobs stats` printed `bash: jobs: stats: no such job` and only `.venv/bin/jobs` worked."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_the_cli_runs_by_its_name_after_activating_the_venv(shell: str, tmp_path: Path) -> None:
    path = shutil.which(shell)
    assert path is not None, f"no {shell}: `make test` installs Debian's {shell} package (make zsh)"
    database = tmp_path / "local.sqlite3"
    script = (
        f"source {ROOT / '.venv/bin/activate'} && cd {tmp_path} && type jobstack && "
        f"jobstack migrate --database-url sqlite:///{database} && jobstack list --database-url sqlite:///{database}"
    )
    # a plain shell: no rc files, a fresh environment but PATH
    argv = [path, "--norc", "-c", script] if shell == "bash" else [path, "-f", "-c", script]
    done = subprocess.run(argv, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert f"jobstack is {ROOT / '.venv/bin/jobstack'}" in done.stdout, done.stdout  # the venv's, not a builtin
    assert "at revision" in done.stdout and done.stdout.rstrip().endswith("(none)"), done.stdout


def test_no_page_or_hint_tells_a_reader_to_run_the_old_name() -> None:
    """Inline code that starts with `jobs` and a command, even where a line break splits it (the rename
    once missed three of those), in the docs, the README and everything the CLI prints."""
    old = re.compile(r"`jobs\s+(?:[a-z-]+)")
    files = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "cli").rglob("*.py"), ROOT / "Makefile"]
    found = [f"{p.relative_to(ROOT)}: {m.group(0)!r}" for p in files for m in old.finditer(p.read_text())]
    assert found == []
