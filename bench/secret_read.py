"""A cold worker's secret read: boto3's GetSecretValue against the Parameters and Secrets Lambda Extension.

Each sample is a fresh Python (the runtime's version) with the shipped asset on sys.path, as a new Lambda
container: import `worker.secrets`, then read the database URL once. The SDK side also has boto3 on the
path (the Lambda runtime provides it; here it is installed for that Python, with bytecode, so it is timed
at its best). Secrets Manager is moto's server on loopback for both: the SDK calls it, and so does the
extension stand-in (cli/fake_secrets_extension.py, a cold cache for every sample, its client made once
as the extension's own is). What this cannot price: the real extension's own start, which Lambda runs
during INIT beside the function's; and the network to Secrets Manager, which both sides pay once.

    make bench  (or: .venv/bin/python -m bench.secret_read)
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from bench.cold_start import HOST_ARCH
from bench.report import write_section
from cli.fake_secrets_extension import fake_extension
from cli.local_ports import free_port
from stacks.bundling import BundleSpec, build_bundle, find_interpreter
from stacks.worker_code import PYTHON_VERSION

ROOT = Path(__file__).resolve().parent.parent
URL = "postgresql://app:bench-password@db.example:6543/jobs"
TOKEN = "bench-session-token"  # noqa: S105 - a stand-in for the function's AWS_SESSION_TOKEN
TIMED_READ = """
import sys, time
sys.path[:0] = {paths!r}
t = time.perf_counter()
from worker.secrets import database_url_from_secret
imported = time.perf_counter()
assert database_url_from_secret({arn!r}) == {url!r}
read = time.perf_counter()
print(imported - t, read - imported, int(any(m.split(".")[0] in ("boto3", "botocore") for m in sys.modules)))
"""


def boto3_for(python: str, folder: Path) -> Path:
    """boto3 at the project's pin, installed for `python` and compiled by it (as fast as it can import)."""
    if not (folder / "boto3").is_dir():
        pin = next(
            line for line in (ROOT / "requirements-dev.txt").read_text().splitlines() if line.startswith("boto3")
        )
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(folder),
             "--python-version", PYTHON_VERSION, "--only-binary=:all:", "--implementation", "cp", pin],
            check=True,
        )  # fmt: skip
        subprocess.run([python, "-m", "compileall", "-q", "-j", "0", str(folder)], check=True)
    return folder


def read_seconds(python: str, paths: list[str], arn: str, env: dict[str, str]) -> tuple[float, float, bool]:
    """(import seconds, first read seconds, whether boto3 was imported) in one fresh interpreter."""
    out = subprocess.run(
        [python, "-S", "-I", "-B", "-c", TIMED_READ.format(paths=paths, arn=arn, url=URL)],
        cwd=tempfile.gettempdir(), env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    imported, read, imported_sdk = out.stdout.split()
    return float(imported), float(read), imported_sdk == "1"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    python = find_interpreter(PYTHON_VERSION)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    aws = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(aws)
    client = boto3.client("secretsmanager", endpoint_url=endpoint)
    arn = client.create_secret(Name="bench-db", SecretString=URL)["ARN"]
    samples: dict[str, list[tuple[float, float]]] = {"sdk": [], "extension": []}
    leaks = []
    try:
        with tempfile.TemporaryDirectory() as tmp, fake_extension(TOKEN, client=client) as extension:
            asset = build_bundle(BundleSpec(PYTHON_VERSION, HOST_ARCH), Path(tmp) / "asset")
            paths = [str(asset), str(boto3_for(python, ROOT / ".build" / f"bench-boto3-{PYTHON_VERSION}"))]
            for _ in range(args.runs):  # interleaved, so machine noise hits both alike
                imported, read, _ = read_seconds(
                    python, paths, arn, {**aws, "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint}
                )
                samples["sdk"].append((imported, read))
                extension.forget()  # a new container's extension starts empty
                env = {**aws, "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(extension.port), "AWS_SESSION_TOKEN": TOKEN}
                imported, read, imported_sdk = read_seconds(python, paths, arn, env)
                samples["extension"].append((imported, read))
                leaks.append(imported_sdk)
    finally:
        server.stop()

    def ms(way: str, index: int) -> float:
        return statistics.median(sample[index] for sample in samples[way]) * 1000

    sdk_read, extension_read = ms("sdk", 1), ms("extension", 1)
    body = f"""
| figure | boto3 (`secrets_extension: false`) | extension (`true`, the default) |
|---|---|---|
| import `worker.secrets` | {ms("sdk", 0):.0f} ms | {ms("extension", 0):.0f} ms |
| first read of the secret (imports it needs included) | {sdk_read:.0f} ms | {extension_read:.0f} ms |
| boto3 imported | yes | {"yes" if any(leaks) else "never"} |

Saved per cold start by the extension: **{sdk_read - extension_read:.0f} ms**
({sdk_read / extension_read:.0f}x less time reading the secret). Medians of {args.runs} fresh Python
{PYTHON_VERSION} interpreters with the shipped asset (and boto3 at the project's pin, with bytecode),
interleaved; Secrets Manager is moto's server on loopback for both sides. The saving is boto3's import
and client set-up, which the worker otherwise never needs on the happy path (a batch of successes makes
no SQS call of its own). Not priced here: the extension's own start during INIT (it runs beside the
function's INIT) and the real network, paid once by either side.
"""
    print(body)
    write_section("secret", "make bench  (or: .venv/bin/python -m bench.secret_read)", body)


if __name__ == "__main__":
    main()
