"""The workflow graph's layout: a chain reads left to right, one column a step; a group's members stand in one
column before their callback; a job stands right of the deepest job it waits for."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from cli.console.graphs import depths, workflow_svg
from db.readings import GraphNode, WorkflowGraph

pytestmark = pytest.mark.unit
_AT = datetime(2026, 12, 6, tzinfo=UTC)


def _graph(n: int, edges: list[tuple[int, int]]) -> WorkflowGraph:
    nodes = [GraphNode(UUID(int=i + 1), "t", "pending", _AT) for i in range(n)]
    return WorkflowGraph(nodes, [(UUID(int=a + 1), UUID(int=b + 1)) for a, b in edges], n)


def test_a_chain_is_one_column_a_step() -> None:
    assert list(depths(_graph(4, [(0, 1), (1, 2), (2, 3)])).values()) == [0, 1, 2, 3]


def test_a_group_stands_in_one_column_before_its_callback() -> None:
    assert list(depths(_graph(4, [(0, 3), (1, 3), (2, 3)])).values()) == [0, 0, 0, 1]


def test_a_job_stands_right_of_the_deepest_job_it_waits_for() -> None:
    # 0 -> 1 -> 2, and 3 waits for 0 and 2: it is after 2, not beside 1
    assert list(depths(_graph(4, [(0, 1), (1, 2), (0, 3), (2, 3)])).values()) == [0, 1, 2, 3]


def test_a_type_name_cannot_become_markup() -> None:
    graph = WorkflowGraph([GraphNode(UUID(int=1), "<script>x</script>", "pending", _AT)], [], 1)
    drawn = str(workflow_svg(graph))
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn
