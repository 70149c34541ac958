"""jobstack's shared boundary: the `background_jobs` schema, job types, repository and publisher.

The worker and any web app import this package; it imports neither of them.

    from . import create_db, publish, Queue
    db = create_db(os.environ["DATABASE_URL"])
    job = publish(db, "test-echo", {"hello": "world"}, queue=Queue(boto3.client("sqs"), QUEUE_URL))
"""

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
from .claiming import Claim, ClaimOutcome, ClaimPlan, claim_job, plan_for
from .clock import utcnow
from .dependencies import Dependency, OnFailure
from .engine import DB, create_db, normalise_url
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
    UnknownJobType,
    UnknownPriority,
    UnroutableJob,
)
from .job_types import JobType, get_job_type, job_type_names, register_job_type, validate_payload
from .lifecycle import ResultNotStorable, cancel_requested, cancel_running, complete_job, fail_job
from .message import JobMessage, MalformedMessage, job_id_hint, parse_body
from .models import Job, JobStatus
from .outbox import enqueue, enqueue_many
from .preparation import JobOptions
from .publish import JobRequest, Queue, publish, publish_many, resend
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
from .workflows import (
    UnknownPrerequisite,
    Workflow,
    WorkflowAlreadyPublished,
    enqueue_chain,
    enqueue_group,
    publish_chain,
    publish_group,
)

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
    "UnknownJobType",
    "UnknownPrerequisite",
    "UnknownPriority",
    "UnroutableJob",
    "Workflow",
    "WorkflowAlreadyPublished",
    "abandoned_jobs",
    "cancel_jobs",
    "cancel_requested",
    "cancel_running",
    "claim_job",
    "complete_job",
    "count_by_status_and_type",
    "count_jobs",
    "create_db",
    "enqueue",
    "enqueue_chain",
    "enqueue_group",
    "enqueue_many",
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
    "publish_chain",
    "publish_group",
    "publish_many",
    "redact",
    "register_job_type",
    "requeue_job",
    "resend",
    "send",
    "take_due",
    "take_for_resend",
    "unmark_sent",
    "unrelease",
    "utcnow",
    "validate_payload",
]


def __getattr__(name: str) -> object:
    """`db.BackgroundJob` (the ORM class) is imported on first use: the worker never pays for the ORM."""
    if name == "BackgroundJob":
        from .orm import BackgroundJob

        return BackgroundJob
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
