"""A Django task's cold start and asset, side by side with a plain jobstack handler's, in the same run.

Two assets of the same worker, built as the stack builds them for this host's architecture: the plain one, and
the one with the Django example project (cdk.json's `django` entry: examples/django_signup, Django 6 from its
pinned requirements). Each round starts a fresh Python 3.13 interpreter per asset, with the asset alone on
sys.path and its bytecode (as Lambda's read-only /var/task), and times INIT's `import worker.handler` plus the
first invocation running one job: a `test-echo` job on the plain asset, a `django.task` job (the example's
`send_welcome_email`, which sets Django up on its first run) on the Django one. Rounds interleave the two, so
machine noise hits both alike. The sizes are the assets' own, unzipped (Lambda's limit: 250 MB) and zipped.

    .venv/bin/python -m bench.django_cold_start [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.cold_start import HOST_ARCH, _Sink
from bench.report import write_section
from cli.scratch_database import scratch_database
from db import JobRequest, Queue, create_db, publish_many
from stacks.bundling import BundleSpec, build_bundle, bundle_size, find_interpreter
from stacks.settings_model import DjangoProject
from stacks.worker_code import PYTHON_VERSION

PROJECT = DjangoProject(
    settings_module="examples.django_signup.settings",
    packages=("examples",),
    requirements="examples/django_signup/requirements.txt",
)
TASK = {"task": "examples.django_signup.tasks.send_welcome_email", "args": ["ada@example.com"]}
FIRST_JOB = """
import sys, time
sys.path[:0] = [{asset!r}]
t = time.perf_counter()
import worker.handler
imported = time.perf_counter()
class Ctx:
    aws_request_id = "bench"
    def get_remaining_time_in_millis(self): return 60000
assert worker.handler.handler({event!r}, Ctx()) == {{"batchItemFailures": []}}
print(imported - t, time.perf_counter() - t)
"""


def first_job(python: str, asset: Path, url: str, job_type: str, payload: dict[str, Any]) -> tuple[float, float]:
    """(import seconds, import + first invocation seconds) in a fresh interpreter with the asset alone."""
    db = create_db(url)
    [job] = publish_many(db, [JobRequest(job_type, payload)], queue=Queue(_Sink(), "sink"))
    db.dispose()
    body = json.dumps({"jobId": str(job.id), "type": job_type, "payload": payload})
    event = {"Records": [{"messageId": "m", "receiptHandle": "r", "body": body, "messageAttributes": {},
                          "attributes": {"ApproximateReceiveCount": "1"}}]}  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": url, "QUEUE_URL": "http://q", "DLQ_URL": "http://d",
           "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": PROJECT.settings_module}  # fmt: skip
    out = subprocess.run(
        [python, "-S", "-I", "-B", "-c", FIRST_JOB.format(asset=str(asset), event=event)],
        cwd=tempfile.gettempdir(), env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    imported, total = (float(x) for x in out.stdout.split())
    return imported, total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    plain_runs: list[tuple[float, float]] = []
    django_runs: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp, scratch_database(prefix="jobstack_bench") as url:
        plain = build_bundle(BundleSpec(PYTHON_VERSION, HOST_ARCH), Path(tmp) / "plain")
        with_django = build_bundle(BundleSpec(PYTHON_VERSION, HOST_ARCH, django=PROJECT), Path(tmp) / "django")
        python = find_interpreter(PYTHON_VERSION)
        for _ in range(args.runs):
            plain_runs.append(first_job(python, plain, url, "test-echo", {}))
            django_runs.append(first_job(python, with_django, url, "django.task", TASK))
        sizes = {name: bundle_size(asset) for name, asset in (("plain", plain), ("django", with_django))}

    def median(runs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(r[i] for r in runs) * 1000

    p_import, p_total = median(plain_runs, 0), median(plain_runs, 1)
    d_import, d_total = median(django_runs, 0), median(django_runs, 1)
    (p_un, p_zip), (d_un, d_zip) = sizes["plain"], sizes["django"]
    body = f"""
| figure | plain jobstack handler | Django task | Django / plain |
|---|---|---|---|
| `import worker.handler` (INIT) | {p_import:.0f} ms | {d_import:.0f} ms | {d_import / p_import:.2f}x |
| INIT + first invocation (one job) | {p_total:.0f} ms | {d_total:.0f} ms | **{d_total / p_total:.2f}x** |
| the first job's own invocation | {p_total - p_import:.0f} ms | {d_total - d_import:.0f} ms | |
| asset, unzipped (Lambda's limit: 250 MB) | {p_un / 1e6:.1f} MB | {d_un / 1e6:.1f} MB | |
| asset, zipped | {p_zip / 1e6:.1f} MB | {d_zip / 1e6:.1f} MB | |

Medians of {args.runs} fresh Python {PYTHON_VERSION} interpreters per asset, interleaved, each with its asset
alone on sys.path and its bytecode, on real PostgreSQL (the URL from the environment: no secret read). The
Django task's first invocation sets Django up (`django.setup()` with the example's settings, which import
`jobstack.django` and Django's task framework), imports the task's module and opens Django's own connection
beside the worker's; later invocations of the same container pay none of it. The plain asset is what a stack
without a `django` entry ships: Django's cost is only paid by projects that name one.
"""
    write_section("django cold start", ".venv/bin/python -m bench.django_cold_start", body)
    print(body)


if __name__ == "__main__":
    main()
