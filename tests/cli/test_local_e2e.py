"""The whole pipeline through `jobstack local`: publish, process with concurrent invocations, dead-letter,
fix, redrive, complete. Real PostgreSQL; SQS is moto with redrive."""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from cli import dlq as dead_letters
from db import DB, JobRequest, JobStatus, Queue, list_jobs, publish_many
from tests.support.cli_runner import Jobs
from tests.support.esm import drain
from tests.support.worker_support import job_type_for_test
from worker.registry import JobContext

pytestmark = pytest.mark.e2e


class Flaky(BaseModel):
    n: int
    fail: bool = False


class Recorder:
    def __init__(self) -> None:
        self.runs: list[tuple[str, int]] = []
        self.fixed = False
        self.lock = threading.Lock()

    def __call__(self, ctx: JobContext) -> None:
        with self.lock:
            self.runs.append((str(ctx.job_id), ctx.attempt))
        if ctx.payload["fail"] and not self.fixed:
            raise RuntimeError(f"job {ctx.payload['n']} always fails until fixed")


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recording = Recorder()
    with job_type_for_test("e2e-flaky", Flaky, recording, max_attempts=2):
        yield recording


def test_200_jobs_through_the_local_runner_then_redrive_after_the_fix(
    jobs: Jobs, pg_db: DB, queue: Queue, dlq: Queue, recorder: Recorder
) -> None:
    requests = [JobRequest("e2e-flaky", {"n": n, "fail": n % 20 == 7}) for n in range(200)]  # 5% always fail
    published = publish_many(pg_db, requests, queue=queue)
    failing = {str(j.id) for j in published if j.payload["fail"]}
    assert len(failing) == 10

    result = jobs("local", "--until-empty", "--concurrency", "4", "--batch-size", "10", "--timeout", "30", "--json")
    assert result.code == 0, result.err
    stats: dict[str, Any] = json.loads(result.out.strip().splitlines()[-1])
    assert stats["invocations"] >= 20

    rows = {str(j.id): j for j in list_jobs(pg_db, limit=1000)}
    assert {j.status for j in rows.values()} <= {JobStatus.COMPLETED, JobStatus.FAILED}
    assert {i for i, j in rows.items() if j.status is JobStatus.FAILED} == failing
    runs = collections.Counter(job_id for job_id, _ in recorder.runs)
    assert all(runs[i] == 1 for i, j in rows.items() if j.status is JobStatus.COMPLETED), "no completed job ran twice"
    assert all(runs[i] == 2 for i in failing), "each failing job used exactly its two attempts"
    letters = dead_letters.receive(dlq.client, dlq.url, 100, hold_seconds=30)
    dead_letters.release(dlq.client, dlq.url, letters)  # a peek: they stay for the redrive
    assert {str(m.job_id) for m in letters} == failing

    recorder.fixed = True  # the operator fixes the cause...
    redrive = jobs("dlq", "redrive", "--json")
    assert redrive.code == 0, redrive.err
    report = json.loads(redrive.out)
    # At-least-once: a duplicate delivery of a dead-lettered message is dead-lettered again ("exhausted"),
    # so the DLQ may hold more than one copy of a failing job; every copy is moved, none is another job's.
    assert sum(report["moved"].values()) >= 10 and set(report["requeued_jobs"]) == failing
    runs_before_fix = collections.Counter(job_id for job_id, _ in recorder.runs)
    assert jobs("local", "--until-empty", "--concurrency", "4").code == 0

    assert {j.status for j in list_jobs(pg_db, limit=1000)} == {JobStatus.COMPLETED}
    assert drain(dlq) == []
    reruns = collections.Counter(job_id for job_id, _ in recorder.runs) - runs_before_fix
    assert reruns == dict.fromkeys(failing, 1), "each redriven job ran once more, however many copies were moved"


def test_ctrl_c_stops_the_embedded_runner_cleanly(tmp_path) -> None:
    """No URLs: an embedded moto SQS and a SQLite file; Ctrl-C finishes in-flight batches and exits 0."""
    import signal
    import subprocess
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [str(root / ".venv/bin/jobstack"), "local", "--sqlite", str(tmp_path / "local.db")],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        # A shell starts background jobs with SIGINT ignored, and a child inherits that: then Ctrl-C is
        # ignored too and this test would wait forever. Ctrl-C's default, as an interactive terminal has it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    first = [process.stderr.readline() for _ in range(4)]  # what it embeds, the export line, then it runs
    assert first[0].startswith("embedded: database sqlite:///") and first[2].startswith("  export "), first
    assert first[3].startswith("running the worker on http://127.0.0.1:"), first
    time.sleep(1.5)
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()  # never leave a runner behind, whatever failed
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert out.strip().startswith("invocations 0")
