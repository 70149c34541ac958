"""Structured logs and metrics without API calls.

Logs: one JSON object per line. In Lambda with the JSON log format the runtime's own handler formats the
root logger's records (our `extra` fields included); anywhere else `configure_logging` installs a JSON
formatter, so local runs and tests read the same fields.

Metrics: CloudWatch Embedded Metric Format (EMF) documents printed to stdout, one per job type per batch.
CloudWatch extracts them from the log stream: no PutMetricData calls, no latency on the hot path.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, TextIO

LOGGER_NAME = "jobstack.worker"
NAMESPACE = "Jobstack"
_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS and not k.startswith("_")})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(level: int) -> logging.Logger:
    """Set the worker's log level; install the JSON formatter unless Lambda's runtime already logs."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    return logger


class _BoundLogger(logging.LoggerAdapter[logging.Logger]):
    """Adds the job's fields to every record, keeping the caller's own `extra` too."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def job_logger(job_id: str, job_type: str, attempt: int) -> logging.LoggerAdapter[logging.Logger]:
    return _BoundLogger(logging.getLogger(LOGGER_NAME), {"job_id": job_id, "type": job_type, "attempt": attempt})


METRIC_NAMES = {
    "succeeded": "JobsSucceeded",
    "failed": "JobsFailed",
    "retried": "JobsRetried",
    "dead_lettered": "JobsDeadLettered",
}


@dataclass
class BatchMetrics:
    """Counts and durations by job type for one invocation, flushed as EMF at the end of the batch."""

    service: str
    counts: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    durations: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def count(self, job_type: str, metric: str) -> None:
        self.counts[job_type][metric] += 1

    def duration(self, job_type: str, ms: float) -> None:
        self.durations[job_type].append(round(ms, 3))

    def documents(self, now_ms: int | None = None) -> list[dict[str, Any]]:
        stamp = now_ms if now_ms is not None else int(time.time() * 1000)
        docs = []
        for job_type in sorted(set(self.counts) | set(self.durations)):
            metrics = [{"Name": name, "Unit": "Count"} for name in METRIC_NAMES.values()]
            doc: dict[str, Any] = {
                "_aws": {
                    "Timestamp": stamp,
                    "CloudWatchMetrics": [
                        {"Namespace": NAMESPACE, "Dimensions": [["Service", "JobType"]], "Metrics": metrics}
                    ],
                },
                "Service": self.service,
                "JobType": job_type,
            }
            for key, name in METRIC_NAMES.items():
                doc[name] = self.counts[job_type][key]
            if self.durations[job_type]:
                metrics.append({"Name": "JobDuration", "Unit": "Milliseconds"})
                doc["JobDuration"] = self.durations[job_type]
            docs.append(doc)
        return docs

    def flush(self, out: TextIO | None = None) -> None:
        """Print the documents where CloudWatch reads them: in Lambda (or with JOBSTACK_EMF=1)."""
        if out is None and not (os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or os.environ.get("JOBSTACK_EMF") == "1"):
            return
        stream = out or sys.stdout
        for doc in self.documents():
            stream.write(json.dumps(doc, separators=(",", ":")) + "\n")
        stream.flush()
