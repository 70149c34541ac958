"""`python -m jobstack.migrate` on a web app's side: it names itself as the web app runs it, and without the
`migrate` extra (Alembic) it says how to install it in one line instead of a raw ModuleNotFoundError."""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.unit


def test_the_installed_package_names_its_own_command(capsys: pytest.CaptureFixture[str]) -> None:
    from jobstack import migrate  # type: ignore[import-not-found]

    with pytest.raises(SystemExit):
        migrate.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m jobstack.migrate ")


def test_without_alembic_it_says_which_extra_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobstack import migrate

    monkeypatch.setitem(sys.modules, "alembic", None)  # as if the extra was not installed
    assert migrate.main(["upgrade", "--database-url", "sqlite:///unused.db"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith('error: migrations need Alembic: pip install "/path/to/your/jobstack-checkout[migrate]"')
    assert line.endswith("python -m jobstack.migrate upgrade")
