"""A Gantt chart of a run's tasks as inline SVG: one row per worker slot, one bar per task.

Tasks are forked processes (a new pid each), so a pid is no useful row.
Rows are *slots*: each task goes to the first row free when it started
(interval partitioning), so the number of rows is the number of tasks that
ran at once, which is what a reader wants to see (were the workers busy?).
Reused tasks ran in an earlier run and take no slot.
"""

from __future__ import annotations

from html import escape
from typing import Any, Dict, List, Mapping, Sequence

from cafstore.ui.dagsvg import STATUS_COLORS

WIDTH, ROW_H, LEFT, TOP = 900, 14, 60, 22


def slots(tasks: Sequence[Mapping[str, Any]]) -> List[List[Mapping[str, Any]]]:
    """Tasks with a start and end, put in rows so that no two in a row overlap (earliest first)."""
    rows: List[List[Mapping[str, Any]]] = []
    ends: List[float] = []
    timed = [t for t in tasks if t.get("started") is not None and t.get("finished") is not None]
    for task in sorted(timed, key=lambda t: (t["started"], t["finished"])):
        for i, end in enumerate(ends):
            if end <= task["started"]:
                rows[i].append(task)
                ends[i] = task["finished"]
                break
        else:
            rows.append([task])
            ends.append(task["finished"])
    return rows


def render(steps: Sequence[Mapping[str, Any]], link: bool = True) -> str:
    tasks = [t for step in steps for t in step["tasks"] if t.get("reused_from") is None]
    rows = slots(tasks)
    if not rows:
        return '<p class="muted">No task of this run has finished here yet.</p>'
    start = min(t["started"] for row in rows for t in row)
    end = max(t["finished"] for row in rows for t in row)
    span = max(end - start, 1e-3)
    scale = (WIDTH - LEFT - 10) / span
    height = TOP + ROW_H * len(rows) + 8
    order: Dict[str, int] = {step["name"]: i for i, step in enumerate(steps)}
    parts = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        'role="img" aria-label="task timeline">',
        f'<text x="{LEFT}" y="12" class="axis">0 s</text>',
        f'<text x="{WIDTH - 10}" y="12" text-anchor="end" class="axis">{span:.2f} s</text>',
    ]
    for number, row in enumerate(rows):
        y = TOP + number * ROW_H
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + ROW_H - 4}" text-anchor="end" class="axis">slot {number + 1}</text>'
        )
        for task in row:
            x = LEFT + (task["started"] - start) * scale
            width = max((task["finished"] - task["started"]) * scale, 1.5)
            shade = "" if order.get(task["step"], 0) % 2 == 0 else ' fill-opacity="0.75"'
            color = "#66bb6a" if task["status"] == "succeeded" else "#e53935"
            title = f"{task['pathspec']} ({task['status']}, {task['finished'] - task['started']:.3f} s)"
            bar = (
                f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{ROW_H - 3}" fill="{color}"{shade}>'
                f"<title>{escape(title)}</title></rect>"
            )
            if link:
                bar = f'<a href="/task/{escape(task["pathspec"])}">{bar}</a>'
            parts.append(bar)
    parts.append("</svg>")
    return "".join(parts)


__all__ = ["render", "slots", "STATUS_COLORS"]
