"""Metrics without API calls: CloudWatch Embedded Metric Format (EMF) documents printed to stdout.

CloudWatch extracts them from the log stream: no PutMetricData calls, no latency on the hot path. Its
limits are ours to keep, or it drops the document (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
at most 100 values per metric per document (a batch of up to 10,000 records splits its durations over
several documents), at most 30 dimensions, ASCII dimension values. Only registered job types become
dimension values: a flood of garbage messages must not mint a metric (and a bill) per invented type.

Every document also carries a `level` and an RFC 3339 `timestamp`, because Lambda's application log-level
filtering (JSON log format) reads exactly those two keys of a JSON stdout line and treats a line without
them as INFO (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html): at a
function level of WARN or ERROR an unlevelled EMF line is dropped before CloudWatch sees it, and the
alarms on JobsUnavailable and JobsErrored go blind. The level is the function's own threshold (INFO below
it), the lowest level that filter keeps: metrics are never hidden by the level, and never louder than it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from db.job_types import is_registered
from worker.contract import (
    DIMENSIONS,
    DURATION_METRIC,
    JOB_TYPE_DIMENSION,
    LAMBDA_LOG_LEVELS,
    METRIC_NAMES,
    METRICS_NAMESPACE,
    QUEUE_WAIT_METRIC,
    SERVICE_DIMENSION,
    Env,
)
from worker.outcomes import Decision, Outcome

NAMESPACE = METRICS_NAMESPACE
MAX_VALUES_PER_METRIC = 100
MAX_DIMENSIONS = 30
UNREGISTERED = "unregistered"


@dataclass
class BatchMetrics:
    """Counts and durations by job type for one invocation, flushed as EMF at the end of the batch."""

    service: str
    #: The function's log level (worker/config.py's LOG_LEVEL): the level each document is printed at.
    log_level: str = "INFO"
    counts: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    durations: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    waits: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # JobQueueWait, ms

    def count(self, job_type: str, metric: str) -> None:
        self.counts[job_type][metric] += 1

    def duration(self, job_type: str, ms: float) -> None:
        self.durations[job_type].append(round(ms, 3))

    def record(self, result: Decision) -> None:
        job_type = result.job_type if result.job_type and is_registered(result.job_type) else UNREGISTERED
        if result.handler_ms is not None:
            self.duration(job_type, result.handler_ms)
        if result.queue_wait_ms is not None:
            self.waits[job_type].append(round(result.queue_wait_ms, 3))
        if result.handler_failed:
            self.count(job_type, "failed")
        if result.outcome is Outcome.SUCCEEDED:
            self.count(job_type, "succeeded")
        elif result.outcome is Outcome.DEAD_LETTERED:
            self.count(job_type, "dead_lettered")
        elif result.outcome is Outcome.CANCELLED:
            self.count(job_type, "cancelled")
        elif result.outcome is Outcome.SNOOZED:
            self.count(job_type, "snoozed")
        elif result.outcome is Outcome.THROTTLED:
            self.count(job_type, "throttled")
        elif result.outcome is Outcome.WAITING:
            self.count(job_type, "waiting")
        elif not result.outcome.acknowledged:
            self.count(job_type, "retried")
        if result.outcome is Outcome.UNAVAILABLE:
            self.count(job_type, "unavailable")
        elif result.outcome is Outcome.ERROR:
            self.count(job_type, "errored")

    def documents(self, now_ms: int | None = None) -> list[dict[str, Any]]:
        """One document per job type, plus one per further 100 durations or queue waits of that type."""
        stamp = now_ms if now_ms is not None else int(time.time() * 1000)
        docs = []
        for job_type in sorted(set(self.counts) | set(self.durations) | set(self.waits)):
            series = {DURATION_METRIC: self.durations[job_type], QUEUE_WAIT_METRIC: self.waits[job_type]}
            chunks = max((len(v) + MAX_VALUES_PER_METRIC - 1) // MAX_VALUES_PER_METRIC for v in series.values())
            for index in range(max(chunks, 1)):
                metrics: list[dict[str, str]] = []
                doc: dict[str, Any] = {SERVICE_DIMENSION: self.service, JOB_TYPE_DIMENSION: job_type}
                if index == 0:  # the counts once per batch; each further document carries values only
                    metrics += [{"Name": name, "Unit": "Count"} for name in METRIC_NAMES.values()]
                    doc |= {name: self.counts[job_type][key] for key, name in METRIC_NAMES.items()}
                for name, values in series.items():
                    chunk = values[index * MAX_VALUES_PER_METRIC : (index + 1) * MAX_VALUES_PER_METRIC]
                    if chunk:
                        metrics.append({"Name": name, "Unit": "Milliseconds"})
                        doc[name] = chunk
                doc["level"] = self.emf_level
                doc["timestamp"] = _rfc3339(stamp)
                doc["_aws"] = {
                    "Timestamp": stamp,
                    "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": DIMENSIONS, "Metrics": metrics}],
                }
                docs.append(doc)
        return docs

    @property
    def emf_level(self) -> str:
        """The level Lambda's filter must keep: the function's threshold, or INFO when that is DEBUG."""
        lambda_level = LAMBDA_LOG_LEVELS.get(self.log_level, "INFO")
        return "INFO" if lambda_level == "DEBUG" else lambda_level

    def flush(self, out: TextIO | None = None) -> None:
        """Print the documents where CloudWatch reads them: in Lambda (or with JOBSTACK_EMF=1)."""
        if out is None and not (os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or os.environ.get(Env.EMF) == "1"):
            return
        stream = out or sys.stdout
        for doc in self.documents():
            stream.write(json.dumps(doc, separators=(",", ":")) + "\n")
        stream.flush()


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
