"""The Lambda asset: built without Docker, content-addressed, small, and importable on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks.bundling import BundleSpec, BundlingError, build_bundle, bundle_size, find_interpreter

#: Another Python than the runtime's (pyenv has it on these machines): the bytecode, hence the asset, differs.
OTHER_PYTHON = "3.12"

pytestmark = pytest.mark.infra


def copy_sources(root: Path, tmp: Path) -> Path:
    """A throwaway copy of the packages the bundle hashes, to change without touching the repository."""
    import shutil

    for package in ("worker", "db"):
        shutil.copytree(root / package, tmp / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "requirements.txt").write_text((root / "worker/requirements.txt").read_text())
    return tmp


def test_the_hash_changes_exactly_when_an_input_changes(tmp_path: Path) -> None:
    root = copy_sources(Path(__file__).resolve().parents[2], tmp_path)
    spec = BundleSpec("3.13", "arm64", root=root, requirements=root / "requirements.txt")
    first = spec.digest()
    (root / "worker" / "__pycache__").mkdir(exist_ok=True)
    (root / "worker" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"noise")
    assert spec.digest() == first, "bytecode caches are not inputs"
    assert BundleSpec(OTHER_PYTHON, "arm64", root=root, requirements=spec.requirements).digest() != first
    assert BundleSpec("3.13", "x86_64", root=root, requirements=spec.requirements).digest() != first
    (root / "worker" / "handler.py").write_text((root / "worker" / "handler.py").read_text() + "\n# changed\n")
    assert spec.digest() != first
    second = spec.digest()
    (root / "requirements.txt").write_text(spec.requirements.read_text() + "\n# pinned differently\n")
    assert spec.digest() != second


def test_the_lambda_bundle_is_small_and_has_no_boto3(tmp_path: Path) -> None:
    out = build_bundle(BundleSpec("3.13", "arm64"), tmp_path / "asset")
    names = {p.name for p in out.iterdir()}
    assert {"worker", "db", "sqlalchemy", "psycopg", "psycopg_binary", "pydantic"} <= names
    assert not {"boto3", "botocore", "greenlet"} & names
    # The example web apps and their frameworks are the web app's, never the worker's.
    assert not {"examples", "flask", "django", "jobstack", "cli", "stacks"} & names
    tags = {p.suffixes[-2] for p in out.rglob("*.pyc") if len(p.suffixes) > 1}
    assert tags <= {".cpython-313"}, f"bytecode of the runtime's Python only (3.13), found {sorted(tags)}"
    assert not list(out.rglob("tests"))
    unzipped, zipped = bundle_size(out)
    assert zipped < 12_000_000, f"asset is {zipped} bytes zipped"
    assert unzipped > zipped


def test_a_dependency_without_a_wheel_fails_with_one_line(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("sqlalchemy==0.1.0\n")  # sdist-only, decades old: no manylinux wheel exists
    spec = BundleSpec("3.13", "arm64", requirements=requirements)
    with pytest.raises(BundlingError) as caught:
        build_bundle(spec, tmp_path / "out", cache=tmp_path / "cache")
    message = str(caught.value)
    assert message.startswith("worker/requirements.txt: sqlalchemy==0.1.0 publishes no wheel for Python 3.13 on arm64")
    assert "\n" not in message
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir()), "no half-built bundle kept"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_asset_ships_deterministic_bytecode_for_the_runtimes_python(tmp_path: Path) -> None:
    """Lambda's /var/task is read-only, so the asset's bytecode is all a cold start gets: compiled by Python
    3.13 exactly (the runtime), hash-based and unchecked (file times on Lambda are not ours), and the same
    bytes from two builds."""
    spec = BundleSpec("3.13", "arm64")
    first = _tree(build_bundle(spec, tmp_path / "a", cache=tmp_path / "cache-a"))
    second = _tree(build_bundle(spec, tmp_path / "b", cache=tmp_path / "cache-b"))
    assert first == second
    assert "worker/handler.py" in first, "our sources stay, for readable tracebacks"
    ours = first["worker/__pycache__/handler.cpython-313.pyc"]
    theirs = first["sqlalchemy/engine/base.pyc"]  # dependencies ship bytecode only
    assert "sqlalchemy/engine/base.py" not in first
    for pyc in (ours, theirs):
        assert int.from_bytes(pyc[4:8], "little") == 0b01, "hash-based, not checked against the source"
    assert b"/var/task/worker/handler.py" in ours, "file names as Lambda sees them, not this machine's"


def test_no_interpreter_for_the_runtime_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBSTACK_BYTECODE_PYTHON", "/nonexistent/python")
    with pytest.raises(BundlingError) as caught:
        find_interpreter("3.99")
    message = str(caught.value)
    assert message.startswith("no Python 3.99 interpreter to compile the worker's bytecode")
    assert "pyenv install 3.99" in message and "JOBSTACK_BYTECODE_PYTHON" in message and "\n" not in message
