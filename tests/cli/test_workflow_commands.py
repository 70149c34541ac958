"""`jobstack show`, `jobstack list --group` and `jobstack cancel --group` on a workflow: one line per refusal, the right
exit code, and the cancelled jobs' dependents settled."""

from __future__ import annotations

import json

import pytest

from db import DB, JobRequest, JobStatus, Queue, get_job
from db.workflows import publish_chain, publish_group
from tests.support.cli_runner import Jobs
from tests.support.esm import FakeLambdaContext, acknowledge, receive_event
from tests.support.workflows import Seen
from worker.batch import process_batch
from worker.runtime import Runtime

pytestmark = pytest.mark.integration


def test_show_names_what_a_job_waits_for_and_what_waits_for_it(jobs: Jobs, pg_db: DB, queue: Queue, seen: Seen) -> None:
    group = publish_group(
        pg_db, [JobRequest("wf-member", {"n": n}) for n in range(3)], then=JobRequest("wf-callback", {}), queue=queue
    )
    assert group.then is not None
    shown = jobs("show", str(group.then.id))
    assert shown.code == 0
    assert "waits for (3):" in shown.out and all(str(j.id) in shown.out for j in group.jobs)
    [line] = [line for line in shown.out.splitlines() if line.startswith("workflow_id ")]
    assert line.split() == ["workflow_id", str(group.id)]
    member = json.loads(jobs("show", str(group.jobs[0].id), "--json").out)
    assert [d["job_id"] for d in member["waited_for_by"]] == [str(group.then.id)]
    assert member["waits_for"] == [] and member["workflow_id"] == str(group.id)
    listed = json.loads(jobs("list", "--group", str(group.id), "--json").out)
    assert {row["id"] for row in listed} == {str(j.id) for j in [*group.jobs, group.then]}


def test_cancel_a_group_cancels_what_has_not_finished(
    jobs: Jobs, pg_db: DB, queue: Queue, runtime: Runtime, seen: Seen
) -> None:
    group = publish_group(
        pg_db, [JobRequest("wf-member", {"n": n}) for n in range(3)], then=JobRequest("wf-callback", {}), queue=queue
    )
    assert group.then is not None
    first = receive_event(queue, max_messages=1)
    acknowledge(queue, first, process_batch(first, FakeLambdaContext(), runtime))
    result = jobs("cancel", "--group", str(group.id))
    assert result.code == 0 and result.out.startswith("cancelled 3 job(s)")  # two members and the callback
    statuses = sorted(get_job(pg_db, j.id).status for j in [*group.jobs, group.then])  # type: ignore[union-attr]
    assert statuses == sorted([JobStatus.COMPLETED, JobStatus.CANCELLED, JobStatus.CANCELLED, JobStatus.CANCELLED])
    rest = receive_event(queue)  # the cancelled members' messages are acknowledged unrun
    acknowledge(queue, rest, process_batch(rest, FakeLambdaContext(), runtime))
    assert len(seen.runs) == 1 and seen.callbacks == []


def test_cancelling_a_chain_step_cancels_the_steps_after_it(jobs: Jobs, pg_db: DB, queue: Queue, seen: Seen) -> None:
    chain = publish_chain(pg_db, [JobRequest("wf-step", {"n": n}) for n in range(3)], queue=queue)
    result = jobs("cancel", str(chain.jobs[0].id))
    assert result.code == 0 and result.out.startswith("cancelled 3 job(s)")
    assert {get_job(pg_db, j.id).status for j in chain.jobs} == {JobStatus.CANCELLED}  # type: ignore[union-attr]


def test_cancel_takes_one_selection(jobs: Jobs) -> None:
    result = jobs("cancel", "--status", "waiting", "--group", "3f2a7c1e-0000-4000-8000-000000000000")
    assert result.code == 2
    assert result.err.strip() == (
        "error: give job ids, --status pending|failed|scheduled|waiting (with optional --type), or --group ID"
    )


def test_retrying_a_waiting_job_is_refused_with_why(jobs: Jobs, pg_db: DB, queue: Queue, seen: Seen) -> None:
    group = publish_group(pg_db, [JobRequest("wf-member", {})], then=JobRequest("wf-callback", {}), queue=queue)
    assert group.then is not None
    result = jobs("retry", str(group.then.id), "--force")
    assert result.code == 1
    assert result.err.strip() == (
        f"refused {group.then.id}: it waits for 1 job(s) to finish and runs when they have "
        f"(jobstack show {group.then.id})"
    )
    assert get_job(pg_db, group.then.id).status is JobStatus.WAITING  # type: ignore[union-attr]


def test_cancelling_the_last_member_of_a_continue_group_sends_its_callback(
    jobs: Jobs, pg_db: DB, queue: Queue, runtime: Runtime, seen: Seen
) -> None:
    group = publish_group(
        pg_db, [JobRequest("wf-member", {"n": n}) for n in range(2)], then=JobRequest("wf-callback", {}), queue=queue,
        on_failure="continue",
    )  # fmt: skip
    assert group.then is not None
    first = receive_event(queue, max_messages=1)
    acknowledge(queue, first, process_batch(first, FakeLambdaContext(), runtime))
    remaining = next(j for j in group.jobs if get_job(pg_db, j.id).status is JobStatus.PENDING)  # type: ignore[union-attr]
    assert jobs("cancel", str(remaining.id)).code == 0
    callback = get_job(pg_db, group.then.id)
    assert callback is not None and callback.status is JobStatus.PENDING and callback.send_count == 1
    for _ in range(2):  # the cancelled member's message (acknowledged unrun), then the callback's
        event = receive_event(queue)
        acknowledge(queue, event, process_batch(event, FakeLambdaContext(), runtime))
    [outcomes] = seen.callbacks
    assert sorted(status for _, status, _ in outcomes) == ["cancelled", "completed"]


def test_a_cancel_with_only_a_database_does_all_it_says_or_nothing(
    jobs: Jobs, pg_db: DB, pg_url: str, queue: Queue, seen: Seen
) -> None:
    """Reported: with only DATABASE_URL (an operator on a bastion), `jobstack cancel` of a pending job marked it
    cancelled, then exited 2 with "no queue". A cancel that releases nothing needs no queue; one that may
    release waiting jobs (which must be sent) is refused before it writes."""
    from datetime import UTC, datetime, timedelta

    from db import publish

    plain = publish(pg_db, "test-echo", {}, queue=queue)
    later = publish(pg_db, "test-echo", {}, queue=queue, run_at=datetime.now(UTC) + timedelta(hours=2))
    result = jobs("cancel", str(plain.id), str(later.id), "--database-url", pg_url, connect=False)
    assert result.code == 0, result.err
    assert all(get_job(pg_db, j.id).status is JobStatus.CANCELLED for j in (plain, later))  # type: ignore[union-attr]

    group = publish_group(
        pg_db, [JobRequest("wf-member", {"n": 1})], then=JobRequest("wf-callback", {}), queue=queue,
        on_failure="continue",
    )  # fmt: skip
    member = group.jobs[0]
    refused = jobs("cancel", str(member.id), "--database-url", pg_url, connect=False)
    assert refused.code == 2 and refused.err.strip() == (
        f"error: job {member.id} has jobs waiting for it, which cancelling it may release and must then send: "
        "pass --queue-url URL, set QUEUE_URL, or --env ENV (nothing was cancelled)"
    )
    assert get_job(pg_db, member.id).status is JobStatus.PENDING  # type: ignore[union-attr]
    by_status = jobs("cancel", "--status", "pending", "--database-url", pg_url, connect=False)
    assert by_status.code == 2 and "nothing was cancelled" in by_status.err
    assert get_job(pg_db, member.id).status is JobStatus.PENDING  # type: ignore[union-attr]
