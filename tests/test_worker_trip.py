"""The worker's trip, computed from the code: the SQS event followed call by call from worker/handler.py
(tests/support/trip.py), held against docs/architecture.md, which shows it, and against the figures this
code reached, so that a change which lengthens the record's path through the worker is seen in review."""

from __future__ import annotations

import pytest

from tests.support.trip import PAGE, WORKER_EVENT, section, walk, written_section

pytestmark = pytest.mark.unit

#: The record's trip through the worker, `db/` one room: at most 20 stays in 8 rooms (the lifecycle issue's
#: goal; 48 stays in 23 files before it, each db module a room).
MOST_STAYS, MOST_ROOMS = 20, 8
#: The same trip with each db module a room, when this test was last tightened: it may shrink (tighten
#: these), never grow unseen. Grown by one stay and one file for tenants' turns (issue 43): a tenant-limited
#: job's freed slot releases its tenant's parked jobs (db/claiming/tenant_gate.py) before the batch sends them.
MOST_STAYS_PER_MODULE, MOST_FILES_PER_MODULE = 21, 13


def test_the_architecture_page_shows_the_trip_the_code_makes() -> None:
    trip = walk(WORKER_EVENT)
    assert written_section(PAGE.read_text()) == section(trip), "the trip changed: run `make trip` and review it"


def test_the_trip_is_no_longer_than_it_was() -> None:
    trip = walk(WORKER_EVENT)
    assert len(trip.stays()) <= MOST_STAYS and len(trip.rooms()) <= MOST_ROOMS
    assert len(trip.stays(db_as_one_room=False)) <= MOST_STAYS_PER_MODULE
    assert len(trip.rooms(db_as_one_room=False)) <= MOST_FILES_PER_MODULE


def test_the_walk_follows_the_value_and_only_the_value() -> None:
    """The event reaches the batch, the decision, the transport and the lifecycle's module; the sweeper, which
    the worker never calls with the event, is not on its trip; db/ counts as one room unless asked."""
    trip = walk(WORKER_EVENT)
    stays = trip.stays()
    assert stays[0] == ("worker/handler.py", ["handler"]) and stays[1] == ("worker/batch.py", ["process_batch"])
    rooms = trip.rooms(db_as_one_room=False)
    assert {"worker/processing.py", "worker/transport.py", "db/lifecycle.py"} <= set(rooms)
    assert "db/" in trip.rooms() and not any(room.startswith("db/") and room != "db/" for room in trip.rooms())
    assert "worker/sweeper.py" not in rooms
