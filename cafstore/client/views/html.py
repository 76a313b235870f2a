"""HTML for Run and Task: what a notebook shows when a cell evaluates to one.

The model's ``_repr_html_`` asks cafstore.client.base for a registered view;
:func:`register` (called when cafstore.client is imported) registers these.
"""

from __future__ import annotations

from html import escape
from typing import Any, Iterable

from cafstore.client.base import register_html_view
from cafstore.client.views.text import duration_text, human_size, printable_tag, run_summary

_STYLE = "border-collapse:collapse;font-family:monospace;font-size:12px"
_COLORS = {"succeeded": "#2e7d32", "failed": "#c62828", "crashed": "#c62828", "running": "#1565c0"}


def _table(rows: Iterable[tuple]) -> str:
    cells = "".join(
        f"<tr><th style='text-align:left;padding:2px 8px'>{escape(str(k))}</th>"
        f"<td style='text-align:left;padding:2px 8px'>{v}</td></tr>"
        for k, v in rows
    )
    return f"<table style='{_STYLE}'>{cells}</table>"


def _status(status: str) -> str:
    return f"<span style='color:{_COLORS.get(status, 'inherit')}'>{escape(status)}</span>"


def run_html(run: Any) -> str:
    s = run_summary(run)
    steps = ", ".join(escape(name) for name in run.step_names()) or "-"
    rows = [
        ("status", _status(s["status"])),
        ("user", escape(printable_tag(s["user"] or "-"))),
        ("created", escape(str(run.created_at))),
        ("duration", escape(duration_text(s["duration"]))),
        ("user tags", escape(", ".join(map(printable_tag, s["user_tags"])) or "-")),
        ("system tags", escape(", ".join(map(printable_tag, s["system_tags"])))),
        ("steps", steps),
    ]
    if run.origin_pathspec:
        rows.append(("resumed from", escape(run.origin_pathspec)))
    return f"<div><b>Run('{escape(run.pathspec)}')</b>{_table(rows)}</div>"


def task_html(task: Any, tail_lines: int = 20) -> str:
    status = "succeeded" if task.successful else "failed"
    rows = [
        ("status", _status(status)),
        ("attempt", task.attempt),
        ("started", escape(str(task.created_at))),
        ("finished", escape(str(task.finished_at))),
    ]
    if task.exception is not None:
        rows.append(("exception", escape(str(task.exception))))
    arts = "".join(
        f"<tr><td style='padding:0 8px'>{escape(artifact.id)}</td><td style='padding:0 8px'>"
        f"{escape(human_size(artifact.size))}</td></tr>"
        for artifact in task
    )
    rows.append(("artifacts", f"<table style='{_STYLE}'>{arts}</table>" if arts else "-"))
    out = task.stdout.splitlines()[-tail_lines:]
    if out:
        rows.append(("stdout (tail)", "<pre style='margin:0'>" + escape("\n".join(out)) + "</pre>"))
    return f"<div><b>Task('{escape(task.pathspec)}')</b>{_table(rows)}</div>"


def register() -> None:
    """Make ``Run`` and ``Task`` show as these tables in notebooks."""
    register_html_view("run", run_html)
    register_html_view("task", task_html)
