"""One snapshot per environment's template (asset hashes masked): `cdk diff` for the reviewer, in a test.

Update after an intended change with `.venv/bin/pytest tests/infra/test_snapshot.py --snapshot-update`;
`make diff ENV=dev` shows the same change as a CloudFormation diff.
"""

from __future__ import annotations

from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.infra.normalise import normalise
from tests.support.synth import ENVIRONMENTS

pytestmark = pytest.mark.infra


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_template_matches_the_snapshot(
    templates: dict[str, dict[str, Any]], env: str, snapshot_json: SnapshotAssertion
) -> None:
    assert normalise(templates[env]) == snapshot_json
