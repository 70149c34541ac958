"""`make deploy-local` with worker pools (three, one of them FIFO), on staging: its own state directory and
moto server, so it runs beside tests/infra/test_rehearsal.py's default rehearsal of dev."""

from __future__ import annotations

import pytest

from tests.support.rehearsal import POOLS, rehearse

pytestmark = pytest.mark.e2e


def test_deploy_local_with_three_pools_one_fifo_deploys_works_jobs_and_destroys() -> None:
    rehearse("staging", {"pools": POOLS})
