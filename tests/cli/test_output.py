"""Output people would rather look at: fast help, shell completion, tables that fit the terminal, a
refreshing `stats --watch`, and `jobstack local`'s summary of what happened to the jobs."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli.dead_letter_kinds import JOB_STATUSES
from cli.main import main
from cli.output import fit_widths, table
from db import JobStatus

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_help_and_completion_load_neither_sqlalchemy_nor_boto3() -> None:
    """`jobstack --help` took 0.36 s because it imported SQLAlchemy up front; commands now load on use."""
    probe = (
        "import sys, contextlib, io\n"
        "from cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for argv in (['--help'], ['list', '--help'], ['completion', 'bash']):\n"
        "        try: main(argv)\n"
        "        except SystemExit: pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'boto3', 'botocore', 'db'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is what the script is for")
@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["jobstack", "dl"], "dlq"),
        (["jobstack", "--env", "dev", "li"], "list"),  # an option's value is not taken for the command
        (["jobstack", "dlq", "red"], "redrive"),
        (["jobstack", "dlq", "redrive", "--inc"], "--include"),
        (["jobstack", "retry", "--sta"], "--status"),
    ],
)
def test_bash_completion_completes_commands_actions_and_options(
    words: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    words_array = " ".join(f"'{w}'" for w in words)
    complete = f'COMP_WORDS=({words_array}); COMP_CWORD={len(words) - 1}; _jobstack_complete; echo "${{COMPREPLY[@]}}"'
    run = f"{script}\n{complete}"
    out = subprocess.run(["bash", "-c", run], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [expected]


def test_tables_cut_their_widest_columns_to_fit_the_line() -> None:
    assert fit_widths([36, 9, 200], 60) == [25, 9, 26]  # the long ones give way; the status stays whole
    stream = io.StringIO()
    rows = [("3f1c2a9e-1111-4222-8333-944455556666", "failed", "ValueError: " + "x" * 200)]
    table(rows, ["id", "status", "error"], stream, width=70)
    lines = stream.getvalue().splitlines()
    assert all(len(line) <= 70 for line in lines)
    assert "failed" in lines[1] and lines[1].endswith("…")
    # the id whole (reported: `make local` printed ids cut to 22 characters, which `jobstack show` refused)
    assert lines[1].startswith("3f1c2a9e-1111-4222-8333-944455556666  ")
    wide = io.StringIO()
    table(rows, ["id", "status", "error"], wide)  # not a terminal: whole cells (up to 80 characters)
    assert "…" not in wide.getvalue()


def test_the_parsers_statuses_are_the_databases() -> None:
    assert tuple(s.value for s in JobStatus) == JOB_STATUSES
