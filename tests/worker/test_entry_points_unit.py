"""The worker's entry points without a database: EMF shape, backoff, and what importing the handler loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from worker.metrics import BatchMetrics
from worker.processing import retry_delay

pytestmark = pytest.mark.unit


ROOT = Path(__file__).resolve().parents[2]


def test_metrics_are_embedded_metric_format_by_job_type() -> None:
    metrics = BatchMetrics("JobsStack-dev")
    metrics.count("send-email", "succeeded")
    metrics.count("send-email", "succeeded")
    metrics.count("resize", "dead_lettered")
    metrics.duration("send-email", 12.5)
    docs = {d["JobType"]: d for d in metrics.documents(now_ms=1)}
    email = docs["send-email"]
    assert email["JobsSucceeded"] == 2 and email["JobDuration"] == [12.5]
    directive = email["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Jobstack"
    assert directive["Dimensions"] == [["Service", "JobType"], ["Service"]]  # alarms watch the second set
    assert {m["Name"] for m in directive["Metrics"]} == {
        "JobsSucceeded",
        "JobsFailed",
        "JobsRetried",
        "JobsDeadLettered",
        "JobsCancelled",
        "JobsUnavailable",
        "JobsErrored",
        "JobsSnoozed",
        "JobsThrottled",
        "JobsWaiting",
        "JobDuration",
    }
    assert docs["resize"]["JobsDeadLettered"] == 1
    assert "JobDuration" not in docs["resize"]


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    assert [retry_delay(n, base=10, cap=900, rand=lambda: 1.0) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert retry_delay(3, base=10, cap=900, rand=lambda: 0.0) == 20  # jitter floor: half the delay
    assert retry_delay(20, base=10, cap=900, rand=lambda: 1.0) == 900


def test_importing_the_handler_does_not_import_boto3() -> None:
    code = "import sys, worker.handler; print('boto3' in sys.modules, 'botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("entry", ["worker.handler", "worker.sweeper", "worker.scheduled"])
def test_the_import_path_loads_only_what_it_runs(entry: str) -> None:
    """The ORM's declarative layer and every PostgreSQL driver's dialect cost a cold start 60 ms and the
    worker runs Core statements only (the dialect a connection needs loads when it is first made); the
    sweeper and the schedules' entry point never run a job, so they import no handler; urllib's HTTP client
    loads only when the secrets extension is asked."""
    banned = ("sqlalchemy.orm", "sqlalchemy.dialects.postgresql", "boto3", "worker.jobs", "urllib.request")
    code = f"import sys, {entry}; print(sorted(m for m in {banned!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    expected = ["worker.jobs"] if entry == "worker.handler" else []
    assert out.stdout.strip() == str(expected)
