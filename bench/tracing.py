"""What tracing costs a worker: the cold start and the per-job time, tracing off and on, in the same run.

1. Cold start: `import worker.handler` and the first invocation (first connection, one job) in fresh
   Python 3.13 interpreters with the shipped asset, as bench/cold_start.py measures them, interleaved:
   - off: `JOBSTACK_TRACING=off` (the default);
   - on, no SDK: `otel` with nothing else (a function without the ADOT layer: the API is not importable);
   - on, with the SDK: `otel` with OpenTelemetry's API and SDK (1.45, installed for 3.13 into a directory
     of their own, as the ADOT layer's /opt/python is) and a provider configured before the import, as the
     layer's wrapper does, exporting to nowhere: the spans are made, not shipped.
2. Per job: jobs/s of no-op jobs in batches of 10 through `process_batch`, real PostgreSQL, for the same
   three modes, rounds interleaved (the provider is swapped between modes in-process).

    .venv/bin/python -m bench.tracing [--runs 9] [--jobs 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from bench.cold_start import (
    HOST_ARCH,
    FirstInvocation,
    Noop,
    _Context,
    _records,
    _Sink,
    first_invocation,
    import_seconds,
)
from bench.report import write_section
from cli.scratch_database import scratch_database
from db import JobRequest, Queue, create_db, publish_many, register_job_type
from stacks.bundling import BundleSpec, build_bundle, find_interpreter
from stacks.worker_code import PYTHON_VERSION
from worker.batch import process_batch
from worker.config import WorkerConfig
from worker.registry import JobContext, job
from worker.runtime import Runtime

OTEL = ("opentelemetry-api==1.45.2", "opentelemetry-sdk==1.45.2")
MODES = ("off", "on, no SDK", "on, with the SDK")

SDK_PRELUDE = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
class Nowhere(SpanExporter):
    def export(self, spans): return SpanExportResult.SUCCESS
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(Nowhere()))
trace.set_tracer_provider(provider)
"""


class Nowhere(SpanExporter):
    """Spans made and handed to the processor, then dropped: the cost of tracing, not of a network."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def first_invocation_of(python: str, asset: Path, url: str, mode: str, otel_dir: Path) -> FirstInvocation:
    """bench/cold_start.py's first invocation, for one mode: the SDK's directory and set-up only with it."""
    sdk = mode == "on, with the SDK"
    return first_invocation(
        python, asset, url, paths=(otel_dir,) if sdk else (), prelude=SDK_PRELUDE if sdk else "",
        environment={"JOBSTACK_TRACING": "off" if mode == "off" else "otel"},
    )  # fmt: skip


def install_otel(python: str, target: Path) -> None:
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target), *OTEL],
        check=True,
    )


def jobs_per_second(url: str, n: int, mode: str, provider: TracerProvider) -> float:
    """One invocation's sequential throughput in batches of 10, for one mode."""
    # The global provider, swapped between modes: a benchmark's liberty with the API's private attribute.
    trace._TRACER_PROVIDER = provider if mode == "on, with the SDK" else None
    db = create_db(url)
    config = WorkerConfig(
        database_url=url, database_secret_arn=None, queue_url="http://q", dlq_url="http://d",
        tracing="off" if mode == "off" else "otel",
    )  # fmt: skip
    runtime = Runtime(config, db=db, sqs=None)
    jobs = publish_many(db, [JobRequest("bench-noop", {}) for _ in range(n)], queue=Queue(_Sink(), "sink"))
    records = _records(jobs)
    start = time.perf_counter()
    for i in range(0, n, 10):
        response = process_batch({"Records": records[i : i + 10]}, _Context(), runtime)
        assert not response["batchItemFailures"], response
    elapsed = time.perf_counter() - start
    db.dispose()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    imports: dict[str, list[float]] = {m: [] for m in MODES}
    set_ups: dict[str, list[float]] = {m: [] for m in MODES}
    firsts: dict[str, list[float]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as tmp, scratch_database(prefix="jobstack_bench") as first_url:
        asset = build_bundle(BundleSpec(PYTHON_VERSION, HOST_ARCH), Path(tmp) / "asset")
        python = find_interpreter(PYTHON_VERSION)
        otel_dir = Path(tmp) / "otel"
        install_otel(python, otel_dir)
        floor = []
        for _ in range(args.runs):  # interleaved, so machine noise hits every mode alike
            floor.append(import_seconds(python, asset, "sqlalchemy, psycopg, pydantic"))
            for mode in MODES:
                measured = first_invocation_of(python, asset, first_url, mode, otel_dir)
                set_ups[mode].append(measured.set_up)
                imports[mode].append(measured.imported)
                firsts[mode].append(measured.total)

    register_job_type("bench-noop", Noop)

    @job("bench-noop")
    def noop(_ctx: JobContext) -> None:
        return None

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Nowhere()))
    logging.getLogger("jobstack.worker").setLevel(logging.WARNING)  # time the work, not the log lines
    rates: dict[str, list[float]] = {m: [] for m in MODES}
    devnull = open(os.devnull, "w")  # noqa: SIM115 - EMF lines go to stdout; keep the report readable
    real_stdout, sys.stdout = sys.stdout, devnull
    try:
        with scratch_database(prefix="jobstack_bench") as url:
            for _ in range(args.rounds):
                for mode in MODES:
                    rates[mode].append(jobs_per_second(url, args.jobs, mode, provider))
    finally:
        sys.stdout = real_stdout
        devnull.close()

    floor_ms = statistics.median(floor) * 1000
    off_import, off_first = (statistics.median(imports["off"]) * 1000, statistics.median(firsts["off"]) * 1000)
    off_rate = statistics.median(rates["off"])
    lines = []
    for mode in MODES:
        imp, first, rate, set_up = (
            statistics.median(imports[mode]) * 1000, statistics.median(firsts[mode]) * 1000,
            statistics.median(rates[mode]), statistics.median(set_ups[mode]) * 1000,
        )  # fmt: skip
        lines.append(
            f"| {mode} | {set_up:.0f} ms | {imp:.0f} ms ({imp / floor_ms:.2f}x) | {first:.0f} ms "
            f"(**{first / off_first:.2f}x**) | {rate:,.0f} | {1000 / rate:.3f} ms (**{off_rate / rate:.2f}x**) |"
        )
    header = (
        f"| tracing | the SDK's set-up (the layer's) | `import worker.handler` (vs the floor, {floor_ms:.0f} ms) "
        "| import + first invocation (vs off) | jobs/s, batches of 10 | per job (vs off) |"
    )
    body = f"""
{header}
|---|---|---|---|---|---|
{chr(10).join(lines)}

Cold start: medians of {args.runs} fresh Python {PYTHON_VERSION} interpreters, the asset alone on sys.path (plus
OpenTelemetry's API and SDK for the last row, in a directory of their own as the ADOT layer has them),
modes interleaved; the floor is `import sqlalchemy, psycopg, pydantic` from the same asset. "The SDK's
set-up" is importing and configuring the SDK before our handler is imported, as the layer's wrapper does:
the layer's cost, paid once per cold start, not the worker's; the modules it loads are then shared, which is
why our import looks cheaper in that row. The worker
imports nothing of OpenTelemetry at import time: the API is imported by the first record of a function
with tracing on, and only where it is installed. Per job: no-op handler, real PostgreSQL on loopback,
{args.jobs} jobs per mode and round, median of {args.rounds} interleaved rounds; "with the SDK" makes 4 spans per
job (the job and its claim, handler and completion) and drops them at export. The off row is
{off_import:.0f} ms / {off_first:.0f} ms / {off_rate:,.0f} jobs/s.
"""
    print(body)
    write_section("tracing", ".venv/bin/python -m bench.tracing", body)


if __name__ == "__main__":
    main()
