"""Job types and their payload schemas: the contract shared by every publisher and the worker.

Schemas are pydantic v2 models, not dataclasses, because a payload arrives as untrusted JSON twice (from a
web app's caller, and back out of SQS), and pydantic gives us in one compiled pass what dataclasses would
need hand-written code for: type coercion rules, nested validation, error messages that name the field
(`amount: Input should be greater than 0`), and a JSON Schema to publish for other teams. Measured import
cost on top of SQLAlchemy + psycopg is small (see docs/benchmarks.md, worker cold start).

Adding a job type:
  1. Declare its payload here (or in your own module imported at start-up):
         class ResizeImage(BaseModel):
             key: str
             width: int = Field(gt=0)
         register_job_type("resize-image", ResizeImage, max_attempts=3)
  2. Write its handler in `worker/jobs/` with `@job("resize-image")`.
  3. Publish it: `publish(db, "resize-image", {"key": "a.png", "width": 200}, queue=queue)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .exceptions import InvalidPayload, JobAlreadyRegistered, UnknownJobType

DEFAULT_MAX_ATTEMPTS = 5
_MAX_TYPE_NAME = 128


@dataclass(frozen=True)
class JobType:
    name: str
    schema: type[BaseModel]
    max_attempts: int
    #: At most this many jobs of the type per tenant waiting to start (pending, scheduled, waiting): a publish
    #: past it is refused with nothing written (db/tenant_quota.py). None: no quota. On the type, not the
    #: handler: the publisher enforces it, and publishers import only db/.
    max_pending_per_tenant: int | None = None

    def validate(self, payload: Any) -> dict[str, Any]:
        """Return the payload as the JSON document to store and send, or raise InvalidPayload."""
        if not isinstance(payload, dict):
            raise InvalidPayload(self.name, f"expected a JSON object, got {_json_kind(payload)}")
        try:
            model = self.schema.model_validate(payload)
        except ValidationError as err:
            raise InvalidPayload(self.name, _describe(err)) from None
        document = model.model_dump(mode="json")
        if _contains_nul(document):
            raise InvalidPayload(
                self.name, "a string contains the NUL character (\\u0000), which PostgreSQL cannot store"
            )
        return document


class AnyObject(BaseModel):
    """Any JSON object, kept as given (extra keys allowed and preserved)."""

    model_config = ConfigDict(extra="allow")


class TestEcho(AnyObject):
    """The smoke-test job: any object. `{"fail": "reason"}` makes its handler raise (exercise retries)."""

    __test__ = False  # a pytest collection hint: this is not a test class


class WelcomeEmail(BaseModel):
    """The example apps' job (examples/): a welcome e-mail for a new user. Its handler (worker/jobs/welcome.py)
    only logs; replace it with your mailer, or delete both if you do not need them."""

    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)


class DjangoTaskCall(BaseModel):
    """A Django task to run (jobstack.django enqueues it; worker/jobs/django_tasks.py runs it): the task by its
    module path, as `Task.module_path` names it, and its arguments, already JSON (Django's rule for a task's
    arguments). What `get_result` needs to rebuild the Task travels with it, so a result can be read from the
    row alone."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=3, max_length=255, pattern=r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    backend: str = Field(default="default", max_length=128)
    queue_name: str = Field(default="default", max_length=128)
    priority: int = Field(default=0, ge=-100, le=100)
    takes_context: bool = False


_registry: dict[str, JobType] = {}


def register_job_type(
    name: str,
    schema: type[BaseModel],
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    max_pending_per_tenant: int | None = None,
) -> JobType:
    if not name or len(name) > _MAX_TYPE_NAME or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(
            f"job type name {name!r} is not valid: use 1-{_MAX_TYPE_NAME} letters, digits, '-', '_' or '.'"
        )
    if max_attempts < 1:
        raise ValueError(f"max_attempts for job type {name!r} must be at least 1, got {max_attempts}")
    if max_pending_per_tenant is not None and max_pending_per_tenant < 1:
        raise ValueError(
            f"max_pending_per_tenant for job type {name!r} must be at least 1, got {max_pending_per_tenant}"
        )
    if name in _registry:
        raise JobAlreadyRegistered(name)
    job_type = JobType(name, schema, max_attempts, max_pending_per_tenant)
    _registry[name] = job_type
    return job_type


def unregister_job_type(name: str) -> None:
    """For tests that register temporary types."""
    _registry.pop(name, None)


def get_job_type(name: str) -> JobType:
    try:
        return _registry[name]
    except KeyError:
        raise UnknownJobType(name, list(_registry)) from None


def registered_job_types() -> Mapping[str, JobType]:
    """Every declared type by name, read-only."""
    return MappingProxyType(_registry)


def is_registered(name: str | None) -> bool:
    return name in _registry


def job_type_names() -> list[str]:
    return sorted(_registry)


def validate_payload(job_type: str, payload: Any) -> dict[str, Any]:
    return get_job_type(job_type).validate(payload)


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def _json_kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False, include_input=False)[:3]:
        loc = ".".join(str(p) for p in e["loc"]) or "payload"
        parts.append(f"{loc}: {e['msg']}")
    more = err.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


register_job_type("test-echo", TestEcho)
register_job_type("welcome-email", WelcomeEmail)
#: Django's tasks, every one of them: `TASKS = {"default": {"BACKEND": "jobstack.django.JobstackBackend"}}`.
DJANGO_TASK = register_job_type("django.task", DjangoTaskCall).name
