"""A group or chain drawn as the graph it is, as SVG on the server (as the throughput chart is: no library, no
script, nothing from another origin). Each job is a box in its state's colour, linking to its page; an arrow
goes from a job to each job that waits for it. Columns are depths: a job stands one column right of the
deepest job it waits for, so a chain reads left to right and a group's members stand in one column before
its callback."""

from __future__ import annotations

from uuid import UUID

from markupsafe import Markup, escape

from db.readings import GraphNode, WorkflowGraph

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 170, 30, 60, 10, 10


def depths(graph: WorkflowGraph) -> dict[UUID, int]:
    """Each job's column: 0 for a job that waits for none of the drawn ones, else one more than the deepest
    job it waits for (longest path, in the order of creation: a prerequisite is always created first)."""
    waits_for: dict[UUID, list[UUID]] = {}
    for prerequisite, dependent in graph.edges:
        waits_for.setdefault(dependent, []).append(prerequisite)
    depth: dict[UUID, int] = {}
    for node in graph.nodes:
        depth[node.id] = 1 + max((depth.get(p, 0) for p in waits_for.get(node.id, [])), default=-1)
    return depth


def workflow_svg(graph: WorkflowGraph) -> Markup:
    depth = depths(graph)
    columns: dict[int, list[GraphNode]] = {}
    for node in graph.nodes:
        columns.setdefault(depth[node.id], []).append(node)
    tallest = max((len(n) for n in columns.values()), default=1)
    place: dict[UUID, tuple[float, float]] = {}
    for column, nodes in columns.items():
        top = PAD + (tallest - len(nodes)) * (BOX_H + GAP_Y) / 2  # each column centred: a callback faces its group
        for row, node in enumerate(nodes):
            place[node.id] = (PAD + column * (BOX_W + GAP_X), top + row * (BOX_H + GAP_Y))
    width = PAD * 2 + max(len(columns), 1) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + tallest * (BOX_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg class="graph" id="workflow-graph" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="the jobs of this group or chain and what waits for what">',
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="6" markerHeight="6" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" class="edge-head"/></marker></defs>',
    ]
    for prerequisite, dependent in graph.edges:
        (x1, y1), (x2, y2) = place[prerequisite], place[dependent]
        parts.append(
            f'<line class="edge" x1="{x1 + BOX_W:.0f}" y1="{y1 + BOX_H / 2:.0f}" x2="{x2:.0f}" '
            f'y2="{y2 + BOX_H / 2:.0f}" marker-end="url(#arrow)"/>'
        )
    for node in graph.nodes:
        x, y = place[node.id]
        label = f"{node.type} · {node.status}"
        shown = label if len(label) <= 26 else label[:25] + "…"
        parts.append(
            f'<a href="/jobs/{node.id}"><g class="node state-{escape(node.status)}" data-job="{node.id}" '
            f'data-state="{escape(node.status)}"><title>{escape(label)} ({node.id})</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="4"/>'
            f'<text x="{x + 8:.0f}" y="{y + BOX_H / 2 + 4:.0f}">{escape(shown)}</text></g></a>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value in it is a number, a UUID or escaped above
