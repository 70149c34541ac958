"""jobstack's shared boundary: the `background_jobs` schema, job types, repository and publisher.

The worker and any web app import this package; it imports neither of them.

    from . import create_db, publish, Queue
    db = create_db(os.environ["DATABASE_URL"])
    job = publish(db, "test-echo", {"hello": "world"}, queue=Queue(boto3.client("sqs"), QUEUE_URL))

What only a web app or an operator uses (publishing, the outbox, workflows, the admin queries) is imported
on first use of one of its names (`_LAZY`): the worker, which never publishes from its hot path, does not
pay for those modules at its cold start (docs/benchmarks.md, worker).
"""

from importlib import import_module
from typing import TYPE_CHECKING

from .claiming import Claim, ClaimOutcome, ClaimPlan, claim_job, plan_for
from .clock import utcnow
from .dependencies import Dependency, OnFailure
from .engine import DB, async_url, create_db, normalise_url
from .exceptions import (
    ConfigError,
    ConnectionBusy,
    DatabaseUnavailable,
    IdempotencyConflict,
    InvalidBatchItem,
    InvalidPayload,
    JobAlreadyRegistered,
    JobstackError,
    PayloadTooLarge,
    PublishBatchError,
    PublishError,
    SchemaNotMigrated,
    TenantQuotaExceeded,
    UnknownJobType,
    UnknownPriority,
    UnroutableJob,
)
from .job_types import JobType, get_job_type, job_type_names, register_job_type, validate_payload
from .lifecycle import ResultNotStorable, cancel_requested, cancel_running, complete_job, fail_job
from .message import JobMessage, MalformedMessage, job_id_hint, parse_body
from .models import Job, JobStatus
from .redaction import redact
from .relay import (
    JobTypes,
    ResendWindows,
    abandoned_jobs,
    mark_sent,
    prune_jobs,
    take_due,
    take_for_resend,
    unmark_sent,
    unrelease,
)
from .routes import Router, Routes

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from .admin import (
        CancelReport,
        JobState,
        cancel_jobs,
        count_by_status_and_type,
        count_jobs,
        existing_job_ids,
        get_job,
        job_id_pages,
        job_states,
        list_jobs,
        oldest_pending,
        requeue_job,
    )
    from .after_commit import send
    from .async_outbox import (
        enqueue_async,
        enqueue_many_async,
        publish_async,
        publish_many_async,
        send_async,
    )
    from .outbox import enqueue, enqueue_many
    from .preparation import JobOptions
    from .publishing import JobRequest, Queue, publish, publish_many, resend
    from .signals import signal, signal_now
    from .waits import Signal
    from .workflows import (
        UnknownPrerequisite,
        Workflow,
        WorkflowAlreadyPublished,
        enqueue_chain,
        enqueue_group,
        publish_chain,
        publish_group,
    )

#: Each lazily imported name and the module that defines it: imported on first use (`__getattr__`).
_LAZY = {
    "CancelReport": "admin",
    "JobState": "admin",
    "cancel_jobs": "admin",
    "count_by_status_and_type": "admin",
    "count_jobs": "admin",
    "existing_job_ids": "admin",
    "get_job": "admin",
    "job_id_pages": "admin",
    "job_states": "admin",
    "list_jobs": "admin",
    "oldest_pending": "admin",
    "requeue_job": "admin",
    "send": "after_commit",
    "enqueue_async": "async_outbox",
    "enqueue_many_async": "async_outbox",
    "publish_async": "async_outbox",
    "publish_many_async": "async_outbox",
    "send_async": "async_outbox",
    "enqueue": "outbox",
    "enqueue_many": "outbox",
    "JobOptions": "preparation",
    "JobRequest": "publishing",
    "Queue": "publishing",
    "publish": "publishing",
    "publish_many": "publishing",
    "resend": "publishing",
    "signal": "signals",
    "signal_now": "signals",
    "Signal": "waits",
    "UnknownPrerequisite": "workflows",
    "Workflow": "workflows",
    "WorkflowAlreadyPublished": "workflows",
    "enqueue_chain": "workflows",
    "enqueue_group": "workflows",
    "publish_chain": "workflows",
    "publish_group": "workflows",
}

__all__ = [
    "DB",
    "BackgroundJob",
    "CancelReport",
    "Claim",
    "ClaimOutcome",
    "ClaimPlan",
    "ConfigError",
    "ConnectionBusy",
    "DatabaseUnavailable",
    "Dependency",
    "IdempotencyConflict",
    "InvalidBatchItem",
    "InvalidPayload",
    "Job",
    "JobAlreadyRegistered",
    "JobMessage",
    "JobOptions",
    "JobRequest",
    "JobState",
    "JobStatus",
    "JobType",
    "JobTypes",
    "JobstackError",
    "MalformedMessage",
    "OnFailure",
    "PayloadTooLarge",
    "PublishBatchError",
    "PublishError",
    "Queue",
    "ResendWindows",
    "ResultNotStorable",
    "Router",
    "Routes",
    "SchemaNotMigrated",
    "Signal",
    "TenantQuotaExceeded",
    "UnknownJobType",
    "UnknownPrerequisite",
    "UnknownPriority",
    "UnroutableJob",
    "Workflow",
    "WorkflowAlreadyPublished",
    "abandoned_jobs",
    "async_url",
    "cancel_jobs",
    "cancel_requested",
    "cancel_running",
    "claim_job",
    "complete_job",
    "count_by_status_and_type",
    "count_jobs",
    "create_db",
    "enqueue",
    "enqueue_async",
    "enqueue_chain",
    "enqueue_group",
    "enqueue_many",
    "enqueue_many_async",
    "existing_job_ids",
    "fail_job",
    "get_job",
    "get_job_type",
    "job_id_hint",
    "job_id_pages",
    "job_states",
    "job_type_names",
    "list_jobs",
    "mark_sent",
    "normalise_url",
    "oldest_pending",
    "parse_body",
    "plan_for",
    "prune_jobs",
    "publish",
    "publish_async",
    "publish_chain",
    "publish_group",
    "publish_many",
    "publish_many_async",
    "redact",
    "register_job_type",
    "requeue_job",
    "resend",
    "send",
    "send_async",
    "signal",
    "signal_now",
    "take_due",
    "take_for_resend",
    "unmark_sent",
    "unrelease",
    "utcnow",
    "validate_payload",
]


def __getattr__(name: str) -> object:
    """A name of `_LAZY` (or `db.BackgroundJob`, the ORM class the worker never pays for), imported on first
    use and kept."""
    if name == "BackgroundJob":
        from .orm import BackgroundJob

        return BackgroundJob
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value
