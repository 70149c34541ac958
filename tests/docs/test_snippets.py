"""Every code snippet of the README and the documentation site runs, as a reader would run it.

A snippet that is not run drifts from the code: the README once imported `from db import ...` (a
`ModuleNotFoundError` in a web app) and showed a handler without its imports. Each page is parsed by Sybil
and its snippets run top to bottom in one namespace, the way a reader follows a page:

- `python` blocks run against a real PostgreSQL (`DATABASE_URL`) and the embedded queue (moto, `QUEUE_URL`),
  importing `jobstack` as a web app does. What a reader's own app provides (a `User` model, the job types it
  declared in `db/job_types.py`) comes from `<!-- invisible-code-block: python -->` comments on the page,
  which also assert what the snippet did;
- `json` blocks (fragments of `cdk.json`) go through the stack's own settings rules, in the environment
  they name;
- `bash` and `sh` lines are checked against what they call: a `make` target the Makefile has, a `jobstack`
  command line the CLI's own parser accepts, a `pip install` by path with extras the distribution declares.

A fenced block in any other language fails the test, so no snippet escapes it; a bare fence is a picture.
Two pages are run elsewhere, against the code itself, and named below.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser

from cli.parser import build_parser
from db import Queue
from stacks.settings import load_settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
#: Pages whose blocks are run by a test of their own, against the code rather than as prose.
RUN_ELSEWHERE = {
    "docs/statements.md": "tests/db/test_statements_doc.py (each block is what the code sends)",
    "docs/publishing-from-other-languages.md": "tests/db/test_contract.py (its SQL through psql, its send)",
}
PAGES = sorted(
    str(p.relative_to(ROOT))
    for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    if str(p.relative_to(ROOT)) not in RUN_ELSEWHERE
)
_FENCE = re.compile(r"^[ \t]*```(\w*)", re.MULTILINE)
#: A bare fence or `text` is a picture (the job's trip, a diagram), not code.
_PICTURES = {"", "text"}
_RUN = {"python", "json", "bash", "sh"}


def _cdk_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


def check_settings_fragment(example: Example) -> None:
    """A `cdk.json` fragment: `"ENV": {...}` goes into that environment, anything else into dev's, and the
    stack's rules load the result (a mistake there fails `make synth`, so it fails here)."""
    fragment = json.loads("{" + example.parsed.strip().rstrip(",") + "}")
    context = _cdk_context()
    environments = context["jobstack"]["environments"]
    named = [key for key in fragment if key in environments]
    for env in named:
        environments[env] = {**environments[env], **fragment[env]}
    if not named:
        environments["dev"] = {**environments["dev"], **fragment}
    for env in named or ["dev"]:
        load_settings(context, env)


def _make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))


def _extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["optional-dependencies"])


def check_shell_lines(example: Example) -> None:
    """Each command of a shell block, checked against what it calls (see the module's docstring)."""
    text = re.sub(r"\\\n", " ", example.parsed)
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        program, args = Path(words[0]).name, words[1:]
        if program == "make":
            assert args[0] in _make_targets(), f"{line!r}: the Makefile has no target {args[0]!r}"
        elif program == "jobstack":
            try:
                build_parser().parse_args(args)
            except SystemExit as exit_:
                raise AssertionError(f"{line!r}: the jobstack command refuses it") from exit_
        elif program == "pip":
            spec = args[-1]
            extras = set(re.findall(r"\[([\w,]+)\]$", spec)[0].split(",")) if spec.endswith("]") else set()
            assert spec.startswith("/path/to/your/jobstack-checkout"), f"{line!r}: install by path, never by name"
            assert extras <= _extras(), f"{line!r}: no such extra, {sorted(extras - _extras())}"
        else:
            raise AssertionError(f"{line!r}: this test does not know how to check {program!r}: teach it")


SYBIL = Sybil(
    parsers=[
        PythonCodeBlockParser(),
        CodeBlockParser(language="json", evaluator=check_settings_fragment),
        CodeBlockParser(language="bash", evaluator=check_shell_lines),
        CodeBlockParser(language="sh", evaluator=check_shell_lines),
    ],
)


@contextlib.contextmanager
def _registries() -> Iterator[None]:
    """What a page registers (its job types, its handlers) is the page's own: both registries, and the
    `jobstack` one a web app imports, are as they were after it."""
    import db.job_types
    import jobstack.job_types  # type: ignore[import-not-found]  # the installed name of db/
    import worker.registry

    kept = [
        (db.job_types._registry, dict(db.job_types._registry)),
        (jobstack.job_types._registry, dict(jobstack.job_types._registry)),
        (worker.registry._handlers, dict(worker.registry._handlers)),
    ]
    try:
        yield
    finally:
        for registry, before in kept:
            registry.clear()
            registry.update(before)


def test_no_page_has_a_block_this_test_cannot_run() -> None:
    unknown = {
        f"{page}: ```{language}"
        for page in PAGES
        for language in _FENCE.findall((ROOT / page).read_text())[::2]
        if language not in _RUN | _PICTURES
    }
    assert unknown == set()


def test_a_web_app_snippet_imports_jobstack_never_db() -> None:
    """`db` is this repository's name for the package; a web app has it as `jobstack` (the wheel)."""
    visible = re.compile(r"^[ \t]*```python\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
    wrong = [
        f"{page}: {line.strip()}"
        for page in PAGES
        for block in visible.findall((ROOT / page).read_text())
        for line in block.splitlines()
        if re.match(r"\s*(from db[ .]|import db\b)", line)
    ]
    assert wrong == []


def test_the_pages_run_elsewhere_are_read_there() -> None:
    for page, runner in RUN_ELSEWHERE.items():
        test_file = ROOT / runner.split(" ")[0]
        assert Path(page).name in test_file.read_text(), f"{runner} no longer reads {page}"


@pytest.mark.parametrize("page", PAGES)
def test_every_snippet_of_the_page_runs(
    page: str, pg_url: str, pg_db: object, queue: Queue, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("QUEUE_URL", queue.url)
    monkeypatch.setenv("JOBSTACK_ROUTES", "")  # a page that sets the routes sets them for itself
    monkeypatch.chdir(tmp_path)
    document = SYBIL.parse(ROOT / page)
    examples = list(document)
    fences = [lang for lang in _FENCE.findall((ROOT / page).read_text())[::2] if lang in _RUN]
    invisible = len(re.findall(r"<!-- invisible-code-block: python", (ROOT / page).read_text()))
    assert len(examples) == len(fences) + invisible, f"{page}: a block was not parsed (an indented fence?)"
    try:
        with _registries():
            for example in examples:
                example.evaluate()
    finally:
        _close(document.namespace)


def _close(namespace: dict[str, Any]) -> None:
    """What a page opened and a reader's process would close at exit: its databases' and engines' pools."""
    for value in namespace.values():
        if isinstance(value, Engine) or type(value).__name__ == "DB":
            value.dispose()
