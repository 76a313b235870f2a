"""The run's DAG as an inline SVG picture: one box per step, coloured by status, with its task count.

The layout (layers, order within a layer, edge routes) comes from grandalf's
Sugiyama layout; this module only turns positions into SVG. A foreach is
one box whatever its fan-out ("1000 tasks"), with the fan-out written on
its edge, so a wide foreach stays readable. Every text is escaped here,
since the SVG goes into the page as markup.
"""

from __future__ import annotations

from html import escape
from typing import Any, Dict, List, Mapping, Sequence, Tuple

STATUS_COLORS = {
    "succeeded": "#c8e6c9",
    "failed": "#ffcdd2",
    "running": "#bbdefb",
    "pending": "#eeeeee",
    "not run": "#f5f5f5",
}
_BORDERS = {"succeeded": "#2e7d32", "failed": "#c62828", "running": "#1565c0"}
NODE_W, NODE_H, PAD = 170, 46, 24


class _Box:
    """The view grandalf places: it reads ``w``/``h`` and writes ``xy`` (the centre)."""

    def __init__(self) -> None:
        self.w, self.h = NODE_W, NODE_H
        self.xy = (0.0, 0.0)


class _Route:
    """The edge view grandalf's router calls with the points of an edge's polyline."""

    def __init__(self) -> None:
        self.points: List[Tuple[float, float]] = []

    def setpath(self, points: List[Tuple[float, float]]) -> None:
        self.points = [(float(x), float(y)) for x, y in points]


def _layout(steps: Sequence[Mapping[str, Any]]) -> Tuple[Dict[str, Tuple[float, float]], List[tuple]]:
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout
    from grandalf.routing import route_with_lines

    vertices = {step["name"]: Vertex(step["name"]) for step in steps}
    for vertex in vertices.values():
        vertex.view = _Box()
    edges = []
    for step in steps:
        for target in dict.fromkeys(step.get("next") or ()):
            if target in vertices and target != step["name"]:  # a switch looping to itself: drawn apart
                edge = Edge(vertices[step["name"]], vertices[target])
                edge.view = _Route()
                edges.append(edge)
    graph = Graph(list(vertices.values()), edges)
    offset = 0.0
    for component in graph.C:
        layout = SugiyamaLayout(component)
        layout.xspace, layout.yspace = 30, 44
        layout.route_edge = route_with_lines
        roots = [v for v in component.sV if v.data == "start"] or None
        layout.init_all(roots=roots)
        layout.draw()
        xs = [v.view.xy[0] for v in component.sV]
        shift = offset - min(xs)
        for vertex in component.sV:
            vertex.view.xy = (vertex.view.xy[0] + shift, vertex.view.xy[1])
        for edge in component.sE:
            edge.view.points = [(x + shift, y) for x, y in edge.view.points]
        offset += max(xs) - min(xs) + NODE_W + 40
    positions = {name: vertex.view.xy for name, vertex in vertices.items()}
    routes = [(e.v[0].data, e.v[1].data, e.view.points) for e in edges]
    return positions, routes


def _note(step: Mapping[str, Any]) -> str:
    count = step.get("count", 0)
    text = f"{count} task{'s' if count != 1 else ''}"
    if step.get("expected") and step["expected"] != count:
        text = f"{count}/{step['expected']} tasks"
    if step.get("failed"):
        text += f", {step['failed']} failed"
    if step.get("reused"):
        text += f", {step['reused']} reused"
    return text


def _edge_label(source: Mapping[str, Any], target: str) -> str:
    if source.get("foreach") is not None:
        fanout = source.get("fanout")
        return f"foreach {source['foreach']}" + (f" \u00d7{fanout}" if fanout is not None else "")
    keys = [str(k) for k, t in (source.get("switch_cases") or {}).items() if t == target]
    return ", ".join(keys)


def render(steps: Sequence[Mapping[str, Any]], link: bool = True) -> str:
    """The SVG markup; with ``link`` each box links to its step's section of the page (``#step-NAME``)."""
    if not steps:
        return ""
    positions, routes = _layout(steps)
    xs = [p[0] for p in positions.values()]
    ys = [p[1] for p in positions.values()]
    left, top = min(xs) - NODE_W / 2 - PAD, min(ys) - NODE_H / 2 - PAD
    width = max(xs) - min(xs) + NODE_W + 2 * PAD + 60
    height = max(ys) - min(ys) + NODE_H + 2 * PAD
    by_name = {step["name"]: step for step in steps}
    parts = [
        f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="{left:.0f} {top:.0f} {width:.0f} {height:.0f}" role="img" aria-label="flow graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
    ]
    for source, target, points in routes:
        (x1, y1), (x2, y2) = positions[source], positions[target]
        pts = [(x1, y1 + NODE_H / 2), *points[1:-1], (x2, y2 - NODE_H / 2)] if points else []
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#555" marker-end="url(#arrow)"/>')
        label = _edge_label(by_name[source], target)
        if label and pts:
            mx, my = pts[len(pts) // 2 - 1] if len(pts) > 2 else ((x1 + x2) / 2, (y1 + y2) / 2)
            parts.append(f'<text class="edge-label" x="{mx + 6:.1f}" y="{my:.1f}">{escape(label)}</text>')
    for name, (x, y) in positions.items():
        step = by_name[name]
        status = step.get("status", "pending")
        fill, stroke = STATUS_COLORS.get(status, "#eee"), _BORDERS.get(status, "#999")
        dashed = ' stroke-dasharray="5 3"' if step.get("type") == "split-switch" else ""  # a switch: one way taken
        box = (
            f'<g class="step" data-step="{escape(name)}" data-status="{escape(status)}">'
            f"<title>{escape(name)}: {escape(status)}</title>"
            f'<rect x="{x - NODE_W / 2:.1f}" y="{y - NODE_H / 2:.1f}" width="{NODE_W}" height="{NODE_H}" rx="8" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dashed}/>'
            f'<text x="{x:.1f}" y="{y - 4:.1f}" text-anchor="middle" class="step-name">{escape(name)}</text>'
            f'<text x="{x:.1f}" y="{y + 13:.1f}" text-anchor="middle" class="step-note">{escape(_note(step))}</text>'
        )
        if name in (step.get("next") or ()):  # a switch that loops to itself
            box += (
                f'<path d="M {x + NODE_W / 2:.1f} {y - 8:.1f} c 30 -14 30 30 0 16" fill="none" stroke="#555" '
                'marker-end="url(#arrow)"/>'
                f'<text class="edge-label" x="{x + NODE_W / 2 + 28:.1f}" y="{y + 4:.1f}">'
                f"{escape(_edge_label(step, name))}</text>"
            )
        box += "</g>"
        if link:
            box = f'<a href="#step-{escape(name)}">{box}</a>'
        parts.append(box)
    parts.append("</svg>")
    return "".join(parts)
