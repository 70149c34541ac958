"""Priority lanes through the worker (process_batch, one Runtime per simulated Lambda container, as Lambda
runs one invocation at a time per container), real PostgreSQL and moto queues behind StrictSqs.

SQS has no priority within a queue: a standard queue delivers in no promised order
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues.html). So a lane
is a pool of its own: its queue, and workers that poll nothing else. What it guarantees: a job published
with priority="high" never waits behind another pool's backlog, only behind its own lane's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from db import (
    DB,
    InvalidBatchItem,
    JobRequest,
    Queue,
    Router,
    Routes,
    UnknownPriority,
    enqueue,
    get_job,
    publish,
    publish_many,
    resend,
    utcnow,
)
from db.relay import JobTypes, take_for_resend
from tests.support.esm import drain
from tests.support.flow_control import Ranked, lane_router
from tests.support.worker_support import fifo_pair, make_config

pytestmark = pytest.mark.integration


def test_an_unknown_priority_or_a_fifo_type_with_one_is_refused_before_anything_is_written(
    pg_db: DB, sqs: Any, queues: tuple[Queue, Queue], lane: tuple[Queue, Queue], ranked: Ranked
) -> None:
    ledger = fifo_pair(sqs, "ledger")[0]
    router = lane_router(sqs, queues[0], lane[0], ledger=ledger.url)
    with pytest.raises(UnknownPriority) as err:
        publish(pg_db, "report", {"n": 1}, queue=router, priority="hihg")
    assert str(err.value) == (
        "job type 'report' cannot be published with priority 'hihg': JobsStack-dev knows priorities high: name one, or "
        "publish without priority (the type's own pool)"
    )
    with pytest.raises(InvalidBatchItem, match="item 1: job type 'report' cannot be published with priority 'x'"):
        items = [JobRequest("report", {"n": 1}), JobRequest("report", {"n": 2}, priority="x")]
        publish_many(pg_db, items, queue=router)
    with pytest.raises(UnknownPriority, match="it runs in FIFO pool 'ledger', whose jobs keep their ordering key's"):
        router.queue_for("ledger-post", "high")
    with pytest.raises(ValueError, match="priority must name a priority lane"):
        publish(pg_db, "report", {"n": 1}, queue=queues[0], priority="")
    with pg_db.begin() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM background_jobs").scalar_one() == 0
    assert drain(queues[0]) == [] and drain(lane[0]) == []


def test_without_lanes_a_priority_is_kept_on_the_row_and_the_job_goes_to_its_types_pool(
    pg_db: DB, sqs: Any, queues: tuple[Queue, Queue], ranked: Ranked
) -> None:
    """The same code publishes to an environment that has no lanes (dev with one queue, or a stack before
    lanes): the job runs in its type's pool, and keeps its priority for a stack that adds the lane."""
    job = publish(pg_db, "report", {"n": 1}, queue=queues[0], priority="high")
    routed = Router(sqs, Routes(queues={"default": queues[0].url}, stack="s"))
    other = publish(pg_db, "report", {"n": 2}, queue=routed, priority="high")
    assert len(drain(queues[0])) == 2
    assert {get_job(pg_db, j.id).priority for j in (job, other)} == {"high"}  # type: ignore[union-attr]


def test_every_later_send_of_a_job_goes_to_its_lane(
    pg_db: DB, sqs: Any, queues: tuple[Queue, Queue], lane: tuple[Queue, Queue], ranked: Ranked
) -> None:
    """A re-send (the sweeper's relay, `jobstack retry`) and an enqueued job's send after commit go to the lane
    the job was published to, not to its type's pool."""
    router = lane_router(sqs, queues[0], lane[0])
    job = publish(pg_db, "report", {"n": 1}, queue=router, priority="high")
    assert resend([job], queue=router) == {}
    with Session(pg_db.engine) as session, session.begin():
        enqueued = enqueue(session, "report", {"n": 2}, queue=router, priority="high")
    bodies = [m["Body"] for m in drain(lane[0])]
    assert len(bodies) == 3 and sum(str(enqueued.id) in b for b in bodies) == 1
    assert drain(queues[0]) == []


def test_the_sweeper_judges_a_lanes_jobs_by_the_lanes_windows_only(
    pg_db: DB, sqs: Any, queues: tuple[Queue, Queue], lane: tuple[Queue, Queue], ranked: Ranked
) -> None:
    """Each pool's stale window follows from its own timeout: a lane's job must be picked up by the lane's
    sweep and by no other pool's (db/relay.py JobTypes)."""
    router = lane_router(sqs, queues[0], lane[0])
    high = publish(pg_db, "report", {"n": 1}, queue=router, priority="high")
    plain = publish(pg_db, "report", {"n": 2}, queue=router)
    later = utcnow() + timedelta(days=1)  # both messages' sends long "expired": each is due for a re-send
    config = make_config("postgresql://unused", *queues, pool_windows={"default": (60, 60, 60), "urgent": (60, 60, 60)},
                         routes=router.routes)  # fmt: skip
    sweeps = dict(zip(("default", "urgent"), config.pool_sweeps(), strict=True))
    by_pool = {}
    for pool, (windows, types) in sweeps.items():
        by_pool[pool] = [j.id for j in take_for_resend(pg_db, windows, now=later, job_types=types)]
    assert by_pool == {"default": [plain.id], "urgent": [high.id]}
    assert sweeps["urgent"][1] == JobTypes(lane="high")
