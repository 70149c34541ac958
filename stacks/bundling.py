"""Docker-free bundling of the worker's Lambda asset: pinned wheels for the target platform, plus the
`worker/` and `db/` packages, stripped of what Lambda never needs.

Why local: no Docker engine is needed (CI runners, laptops and this repository's own CI have none), and
pip can fetch manylinux wheels for any Python version and architecture from any host. A dependency that
publishes no wheel for the target fails the synth with one line naming it, rather than building an
asset that cannot import on Lambda.

Bytecode ships in the asset. Lambda's /var/task is read-only, so without it every cold start compiles
SQLAlchemy, pydantic, psycopg and our code from source (about 1.05 s against 0.38 s with it, measured with
Python 3.13). It is compiled by an interpreter of exactly the function's Python version (bytecode is
version-specific), with `--invalidation-mode unchecked-hash` (Lambda's file times are not ours, so the
usual timestamp check would reject every file) and with file names rewritten to /var/task, so the same
inputs give the same bytes on every machine. The interpreter is found on PATH, under pyenv, or named by
JOBSTACK_BYTECODE_PYTHON; without one the synth fails with one line saying how to get it, never silently
shipping an asset without bytecode.

The asset hash is ours, not CDK's: a digest of the sources, the pinned requirements, the Python version
(and the compiling interpreter's exact release) and the architecture. It changes exactly when one of
those changes, and lets a second synth reuse the bundle (CDK skips bundling when the hashed directory
exists; `.build/bundles/` keeps a copy across `cdk.out` clean-ups and test runs).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks.settings_model import DjangoProject

ROOT = Path(__file__).resolve().parent.parent
SOURCE_PACKAGES = ("worker", "db")
REQUIREMENTS = ROOT / "worker" / "requirements.txt"
CACHE = ROOT / ".build" / "bundles"
#: Bump when the bundle's layout or stripping rules change (2: ships bytecode; 3: no pydantic/mypy.py; 4: no
#: db/migrations).
BUNDLER_VERSION = "4"
LAMBDA_TASK_ROOT = "/var/task"

#: Never shipped as the wheels bring them: their bytecode (compiled anew below, for the function's Python,
#: deterministically), type stubs, C sources, and test suites.
STRIP_SUFFIXES = (".pyc", ".pyo", ".pyi", ".pyx", ".pxd", ".c", ".h", ".cpp")
STRIP_DIRS = ("__pycache__", "tests", "include")
#: Installed as dependencies but never imported by the worker.
STRIP_PACKAGES = {
    "greenlet": "only SQLAlchemy's asyncio extension uses it; the worker is synchronous",
    "sqlalchemy/testing": "SQLAlchemy's own test harness",
    "sqlalchemy/dialects/mssql": "other databases' dialects",
    "sqlalchemy/dialects/mysql": "other databases' dialects",
    "sqlalchemy/dialects/oracle": "other databases' dialects",
    "sqlalchemy/ext/mypy": "a type-checker plugin",
    "pydantic/mypy.py": "a type-checker plugin",
    "pydantic/v1": "pydantic's v1 compatibility layer; our schemas are v2",
    "sqlalchemy/ext/asyncio": "needs greenlet, which is not shipped; the worker is synchronous",
    "sqlalchemy/dialects/sqlite": "the deployed worker talks to PostgreSQL; SQLite is for local runs",
}
#: Parts of our own packages the function never imports.
STRIP_OWN = {
    "db/migrations": "migrations run from a checkout or a web app (`jobstack migrate`), never in the function, "
    "which does not ship Alembic",
    "db/migrate.py": "the same: the migration command",
}
_PLATFORMS = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
}


class BundlingError(RuntimeError):
    """The asset cannot be built; the message says which dependency and what to do."""


@dataclass(frozen=True)
class BundleSpec:
    python_version: str  # "3.14"
    architecture: str  # "arm64" | "x86_64"
    root: Path = ROOT
    requirements: Path = REQUIREMENTS
    #: A Django project whose tasks the worker runs: its packages at the asset's root (as its `root` is on
    #: sys.path when Django runs it), its requirements installed with the worker's, and `jobstack` importable
    #: as the asset's `db` (its settings name jobstack.django's backend).
    django: DjangoProject | None = None

    def source_files(self) -> list[tuple[Path, Path]]:
        """Every file copied into the asset: (where it is, where it goes in the asset)."""
        files = []
        places = [(self.root, package) for package in SOURCE_PACKAGES]
        if self.django is not None:
            places += [(self.root / self.django.root, package) for package in self.django.packages]
        for base, package in places:
            for path in sorted((base / package).rglob("*")):
                relative = path.relative_to(base)
                django_only = self.django is None and relative.as_posix() in DJANGO_ONLY
                if path.is_file() and not _stripped(relative) and not django_only:
                    files.append((path, relative))
        return files

    def requirement_files(self) -> list[Path]:
        return [self.requirements] + ([self.root / self.django.requirements] if self.django is not None else [])

    def digest(self) -> str:
        h = hashlib.sha256()
        compiler = interpreter_release(self.python_version)
        h.update(
            f"bundler={BUNDLER_VERSION};python={self.python_version};compiler={compiler};arch={self.architecture}\n".encode()
        )
        for requirements in self.requirement_files():
            h.update(requirements.read_bytes())
        if self.django is not None:
            h.update(f"django={self.django.settings_module};alias={JOBSTACK_ALIAS}\n".encode())
        for path, target in self.source_files():
            h.update(str(target).encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
        return h.hexdigest()


#: Our own modules that only a Django project imports (jobstack.django, its settings' database): shipped only in
#: an asset with one (BundleSpec.django); the `django.task` handler refuses in one line without them.
DJANGO_ONLY = ("db/django.py", "db/django_database.py")


def _stripped(relative: Path) -> bool:
    parts = relative.parts
    if any(part in STRIP_DIRS for part in parts[:-1]) or relative.suffix in STRIP_SUFFIXES:
        return True
    joined = "/".join(parts)
    return any(joined == p or joined.startswith(p + "/") for p in (*STRIP_PACKAGES, *STRIP_OWN))


def build_bundle(spec: BundleSpec, output_dir: Path, *, cache: Path = CACHE) -> Path:
    """Fill `output_dir` with the bundle, building it once per digest into `cache`."""
    cached = cache / spec.digest()
    if not cached.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="bundle-", dir=cache))
        try:
            _install_wheels(spec, staging)
            for path, relative in spec.source_files():
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
            if spec.django is not None:
                _check_django(spec, staging)
                (staging / "jobstack").mkdir()
                (staging / "jobstack" / "__init__.py").write_text(JOBSTACK_ALIAS)
            _strip(staging)
            _compile(spec.python_version, staging)
            _normalise_mtimes(staging)
            try:
                os.replace(staging, cached)
            except OSError:
                if not cached.is_dir():  # not another process's identical bundle: a real failure
                    raise
                shutil.rmtree(staging, ignore_errors=True)  # another process built the same digest first
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    output_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(cached, output_dir, dirs_exist_ok=True, symlinks=True)
    return output_dir


def _install_wheels(spec: BundleSpec, target: Path) -> None:
    platforms = _PLATFORMS.get(spec.architecture)
    if platforms is None:
        raise BundlingError(f"unknown architecture {spec.architecture!r}: use arm64 or x86_64")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    for platform in platforms:
        command += ["--platform", platform]
    command += [
        "--only-binary=:all:",
        "--implementation", "cp",
        "--python-version", spec.python_version,
        "--target", str(target),
    ]  # fmt: skip
    for requirements in spec.requirement_files():  # one resolution: the project's pins meet the worker's
        command += ["-r", str(requirements)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        raise BundlingError(_explain_pip_failure(result.stderr, spec))


def _explain_pip_failure(stderr: str, spec: BundleSpec) -> str:
    missing = re.search(r"No matching distribution found for ([^\s(]+)", stderr)
    where = f"Python {spec.python_version} on {spec.architecture} (manylinux)"
    files = " and ".join(_shown(path, spec) for path in spec.requirement_files())
    if missing:
        return (
            f"{files}: {missing.group(1)} publishes no wheel for {where}: "
            "pin a version that does, or change the function's runtime or architecture"
        )
    last = [line for line in stderr.strip().splitlines() if line.strip() and "is ignored" not in line][-1:]
    return f"installing {files} for {where} failed: {last[0] if last else 'pip gave no reason'}"


def _shown(path: Path, spec: BundleSpec) -> str:
    """A requirements file as the user named it: the worker's own as worker/requirements.txt, a Django
    project's as cdk.json names it."""
    if spec.django is None or path != spec.root / spec.django.requirements:
        return "worker/requirements.txt"
    return spec.django.requirements


def _check_django(spec: BundleSpec, staging: Path) -> None:
    """The project's requirements must bring Django itself: without it every Django task would fail at its
    first import, after the deploy."""
    assert spec.django is not None
    if not (staging / "django" / "tasks").is_dir():
        raise BundlingError(
            f"django: {spec.django.requirements} installs no Django with django.tasks: pin django>=6.0 in it"
        )


#: The asset's `jobstack`: the name a web app imports the shared package by (a Django project's settings name
#: `jobstack.django.JobstackBackend`), which the asset ships as `db`. An alias, not a copy: `jobstack.X` is the
#: module `db.X`, so each job type is registered once and the worker and the project share one state.
JOBSTACK_ALIAS = '''"""`jobstack`, as the asset's `db` (stacks/bundling.py: JOBSTACK_ALIAS)."""

import importlib
import importlib.abc
import importlib.util
import sys

import db


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name.startswith("jobstack.") else None

    def create_module(self, spec):
        return importlib.import_module("db" + spec.name[len("jobstack"):])

    def exec_module(self, module):
        return None


sys.meta_path.insert(0, _Alias())
sys.modules[__name__] = db
'''


def _strip(root: Path) -> None:
    for relative in STRIP_PACKAGES:
        if (root / relative).is_file():
            (root / relative).unlink()
        shutil.rmtree(root / relative, ignore_errors=True)
    for dist_info in root.glob("greenlet-*.dist-info"):
        shutil.rmtree(dist_info)
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_dir() and path.name in STRIP_DIRS:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in STRIP_SUFFIXES:
            path.unlink()


def find_interpreter(version: str) -> str:
    """An interpreter of exactly Python `version` (e.g. "3.13"), or BundlingError saying how to get one."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = [
        os.environ.get("JOBSTACK_BYTECODE_PYTHON"),
        sys.executable,
        shutil.which(f"python{version}"),
        *(str(p) for p in sorted(root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True)),
        f"/usr/bin/python{version}",
    ]
    for candidate in candidates:
        if candidate and _release_of(candidate).rsplit(".", 1)[0] == version:
            return candidate
    raise BundlingError(
        f"no Python {version} interpreter to compile the worker's bytecode (the function runs Python {version}): "
        f"install one (pyenv install {version}, or your OS's python{version} package) or set "
        "JOBSTACK_BYTECODE_PYTHON to its path"
    )


@functools.cache
def interpreter_release(version: str) -> str:
    """The exact release (3.13.0) of the interpreter that compiles `version`'s bytecode."""
    return _release_of(find_interpreter(version))


@functools.cache
def _release_of(executable: str) -> str:
    try:
        result = subprocess.run(  # noqa: S603 - an interpreter path and a fixed script
            [executable, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _compile(version: str, root: Path) -> None:
    """Bytecode for every module, as the function's Python loads it from a read-only /var/task.

    Our own packages keep their sources beside `__pycache__`, so their tracebacks show the code. The
    dependencies ship bytecode only ("sourceless", `module.pyc` where `module.py` was): their sources would
    add 2 MB to the zipped asset, and Lambda never needs them to run.
    """
    ours = "|".join(re.escape(str(root / package)) for package in SOURCE_PACKAGES)
    common = ["--invalidation-mode", "unchecked-hash", "-s", str(root), "-p", LAMBDA_TASK_ROOT]
    _compileall(version, [*common, *(str(root / package) for package in SOURCE_PACKAGES)])
    _compileall(version, ["-b", "-x", f"^({ours})/", *common, str(root)])
    for source in root.rglob("*.py"):
        theirs = not any(source.is_relative_to(root / package) for package in SOURCE_PACKAGES)
        if theirs and source.with_suffix(".pyc").is_file():
            source.unlink()


def _compileall(version: str, arguments: list[str]) -> None:
    command = [find_interpreter(version), "-m", "compileall", "-q", "-j", "0", *arguments]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        failed = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()][:1]
        raise BundlingError(
            f"compiling the worker's bytecode with Python {version} failed: {failed[0] if failed else 'no reason'}"
        )


def _normalise_mtimes(root: Path) -> None:
    """Fixed timestamps, so the zipped asset is byte-identical wherever it is built."""
    for path in root.rglob("*"):
        os.utime(path, (315532800, 315532800), follow_symlinks=False)  # 1980-01-01, zip's epoch


def bundle_size(directory: Path) -> tuple[int, int]:
    """(unzipped bytes, zipped bytes) of a bundle directory, zipped the way CDK zips assets (deflate)."""
    import zipfile

    unzipped = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "asset.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(directory.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(directory))
        return unzipped, archive.stat().st_size


class LocalBundler:
    """CDK's ILocalBundling, implemented with `build_bundle` (registered with jsii in `worker_code`)."""

    def __init__(self, spec: BundleSpec) -> None:
        self.spec = spec

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        build_bundle(self.spec, Path(output_dir))
        return True
