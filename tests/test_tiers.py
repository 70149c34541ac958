"""Every test carries a tier marker: the collection hook (tests/conftest.py) refuses a module without one,
in one line, so no test runs only in `make test` and in none of the tier targets."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
TESTS = Path(__file__).resolve().parent


def test_a_test_without_a_tier_is_refused_at_collection(capfd: pytest.CaptureFixture[str]) -> None:
    code, output, probe = _collect("def test_forgot_its_tier() -> None:\n    assert 1 + 1 == 2\n", capfd)
    assert code != 0
    assert f"1 test(s) carry no tier marker (unit, integration, infra, e2e), the first tests/{probe}" in output


@pytest.mark.parametrize(
    ("source", "says"),
    [
        (
            "import pytest\npytestmark = [pytest.mark.unit, pytest.mark.integration]\n"
            "def test_both() -> None:\n    assert 1 + 1 == 2\n",
            "carry more than one tier marker",
        ),
        (
            "import pytest\npytestmark = pytest.mark.unit\n"
            "def test_fast() -> None:\n    assert 1 + 1 == 2\n"
            "@pytest.mark.integration\ndef test_slow() -> None:\n    assert 2 + 2 == 4\n",
            "carry more than one tier marker",
        ),
        (
            "import pytest\n@pytest.mark.unit\ndef test_fast() -> None:\n    assert 1 + 1 == 2\n"
            "@pytest.mark.e2e\ndef test_slow() -> None:\n    assert 2 + 2 == 4\n",
            "mixes tiers (e2e, unit): split it by tier",
        ),
        (
            "import pytest\npytestmark = pytest.mark.infra\n"
            "def test_needs_a_database(pg_db: object) -> None:\n    assert pg_db is not None\n",
            "is marked infra but needs PostgreSQL: mark it integration",
        ),
    ],
)
def test_a_test_or_file_with_two_tiers_is_refused_at_collection(
    source: str, says: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """`make unit` and the other tier targets select by marker: a file that mixes tiers hides what each tier
    needs (a database, a synth) behind one name, and a test in two tiers runs twice."""
    code, output, _ = _collect(source, capfd)
    assert code != 0
    assert says in output


def _collect(source: str, capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Collect a probe test file holding `source`: (exit code, output, the probe's file name). In this
    process (`pytest.main`): the project's conftest is the one already imported, so a probe costs its
    collection only, not a new interpreter importing the suite's plugins."""
    probe = TESTS / f"test_probe_{uuid.uuid4().hex[:8]}.py"
    probe.write_text(source)
    try:
        code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(probe)])
    finally:
        probe.unlink()
    out, err = capfd.readouterr()
    return int(code), out + err, probe.name
