"""Starting a job by hand from the console, and editing and replaying a failed one: one form, built from the
type's JSON schema (a field per property: cli/console/schema_form.py; or the payload as JSON), filled from
the schema's defaults or the failed job's payload, validated against that schema before anything is
written, and published through `publish()` as the CLI's `jobstack publish` does, to the type's pool.

A replay publishes a new job linked to the old one, rather than retrying the same row with another payload:
the old row keeps what failed (its payload, its error, its attempts) for the incident's review, the new one
starts with fresh attempts, and the audit trail links the two both ways (each job's page shows the other).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, render_template, request

from cli import audit_trail
from cli.console.context import BadInput, console, uuid_of
from cli.console.schema_form import FieldError, FormField, form_fields, payload_from
from db import Job, JobStatus, get_job, publish
from db.audit import Action
from db.exceptions import JobstackError

enqueuing = Blueprint("enqueuing", __name__)

#: The payload a form shows at most (a bigger one is replayed from the CLI: `jobstack show ID --json`).
FORM_CHARS = 64 * 1024


def _types() -> list[str]:
    import worker.jobs  # noqa: F401 - the worker's job modules, so the types they register are offered too
    from db.job_types import job_type_names

    return job_type_names()


def _skeleton(job_type: str) -> str:
    """A payload to start from: each property of the type's schema with its default, or an empty value of
    its JSON type."""
    from db.job_types import get_job_type

    schema = get_job_type(job_type).schema.model_json_schema()
    empty = {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}
    document = {
        name: spec.get("default", empty.get(str(spec.get("type"))))
        for name, spec in schema.get("properties", {}).items()
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _schema(job_type: str) -> dict[str, Any]:
    from db.job_types import get_job_type

    return get_job_type(job_type).schema.model_json_schema()


def _replayed(job_id: str) -> Job:
    job = get_job(console().sources.db, uuid_of(job_id, "a job id"))
    if job is None:
        abort(404, f"no job {job_id}")
    if job.status is not JobStatus.FAILED:
        raise BadInput(f"job {job.id} is {job.status.value}: only a failed job is edited and replayed")
    return job


def _known(job_type: str) -> list[str]:
    types = _types()
    if job_type not in types:
        raise BadInput(f"unknown job type {job_type[:60]!r}: the types here are {', '.join(types)}")
    return types


def _form(
    job_type: str,
    payload: str,
    replay: Job | None,
    error: str | None = None,
    status: int = 200,
    fields: list[FormField] | None = None,
    tenant: str | None = None,
) -> Any:
    """The form for `job_type` (a 400 in one line if no such type is declared here): its `fields`, or the
    payload as JSON when there are none."""
    types = _known(job_type)
    schema = _schema(job_type)
    page = render_template(
        "enqueue.html", types=types, job_type=job_type, payload=payload, fields=fields, replay=replay, error=error,
        schema=json.dumps(schema, indent=2, ensure_ascii=False), as_fields=bool(schema.get("properties")),
        tenant=tenant if tenant is not None else (replay.tenant if replay is not None else None), page="jobs",
    )  # fmt: skip
    return page, status


@enqueuing.get("/enqueue")
def enqueue_form() -> Any:
    if console().read_only:
        abort(403, "this console is read-only (started with --read-only)")
    as_json = request.args.get("as") == "json"
    if request.args.get("replay"):
        job = _replayed(request.args["replay"])
        payload = json.dumps(job.payload, indent=2, ensure_ascii=False, sort_keys=True)
        fields = None if as_json else form_fields(_schema(job.type), job.payload)
        return _form(job.type, payload[:FORM_CHARS], job, fields=fields)
    job_type = request.args.get("type") or _types()[0]
    _known(job_type)
    return _form(job_type, _skeleton(job_type), None, fields=None if as_json else form_fields(_schema(job_type)))


@enqueuing.post("/act/enqueue")
def enqueue() -> Any:
    """Validate, then publish; a payload the schema refuses comes back in the form, as it was typed, with its
    one line, and nothing is written."""
    job_type, text = request.form.get("type", ""), request.form.get("payload", "")
    tenant = request.form.get("tenant", "").strip() or None
    replay = _replayed(request.form["replay"]) if request.form.get("replay") else None
    if replay is not None and job_type != replay.type:
        raise BadInput(f"a replay of job {replay.id} is of its type, {replay.type}")
    fields = None
    if request.form.get("mode") == "fields":
        _known(job_type)
        fields = form_fields(_schema(job_type), shown=request.form)
        if fields is None:
            raise BadInput(f"the {job_type} schema has no fields: send the payload as JSON")
        try:
            payload = payload_from(fields, request.form)
        except FieldError as err:
            return _form(job_type, text, replay, str(err), 400, fields, tenant)
    else:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as err:
            error = f"the payload is not JSON: {err.msg} at line {err.lineno}"
            return _form(job_type, text, replay, error, 400, tenant=tenant)
    sources = console().sources
    try:
        job = publish(sources.db, job_type, payload, queue=sources.target.destination, tenant=tenant)
    except (JobstackError, ValueError) as err:  # the schema's refusal, a tenant's quota or form: nothing written
        return _form(job_type, text, replay, str(err).splitlines()[0], 400, fields, tenant)
    action = "replay" if replay is not None else "publish"
    asked = f"replay of job {replay.id}, payload edited" if replay is not None else f"type {job_type}"
    asked += f", tenant {tenant}" if tenant is not None else ""
    outcome = f"published job {job.id} ({job.status.value})"
    old = replay.id if replay is not None else None
    audit_trail.record(sources.target, Action("console", action, 1, asked, outcome, old, job.id))
    lines = [f"published {job.type} job {job.id}" + (f", a replay of job {replay.id}" if replay else "")]
    return render_template("result.html", lines=lines + sources.idle_hints(), back=f"/jobs/{job.id}", page="")
