"""HTML pages from the gathered facts: Jinja2 templates with autoescaping on for every template.

The same run page serves the web app and ``cafstore report``: in a report
(``report=True``) links to other pages become plain text, the live-update
script is left out, and everything (style, pictures, images) is already
inline, so the file opens offline. Each page carries a Content-Security-
Policy that allows only the page's own script (by a fresh nonce), inline
styles and ``data:`` images: a payload that slipped past escaping still
could not load or run anything.
"""

from __future__ import annotations

import secrets
from typing import Any, Dict, Mapping, Optional
from urllib.parse import quote, urlencode

from cafstore.client import Run, Task
from cafstore.ui import dagsvg, facts, timeline

GRID_LIMIT = 2000  # task squares drawn per step; more are counted, not drawn


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader

    env = Environment(loader=PackageLoader("cafstore.ui", "templates"), autoescape=True)
    env.filters["urlpart"] = lambda text: quote(str(text), safe="")
    env.filters["urlpath"] = lambda text: quote(str(text), safe="/")
    return env


_ENV: Optional[Any] = None


def environment() -> Any:
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    return _ENV


def _render(template: str, report: bool = False, **context: Any) -> str:
    from markupsafe import Markup, escape

    def link_run(pathspec: str) -> Any:
        if report:
            return escape(pathspec)
        return Markup('<a href="/run/{}">{}</a>').format(quote(pathspec, safe="/"), pathspec)

    def link_task(task: Mapping[str, Any], text: str) -> Any:
        classes = f"t-{task['status']}" + (" t-reused" if task.get("reused_from") is not None else "")
        classes += "" if text else " sq"  # no text: a square of the step's grid
        title = escape(f"{task['pathspec']} ({task['status']})")
        # Markup.format is ~100 us a call; a 1,000-task page has 1,000 of these, so escape by hand.
        href = "" if report else f' href="/task/{escape(quote(task["pathspec"], safe="/"))}"'
        return Markup(f'<a class="{escape(classes)}" title="{title}"{href}>{escape(text)}</a>')

    return (
        environment()
        .get_template(template)
        .render(
            report=report,
            nonce=secrets.token_urlsafe(12),
            home="#" if report else "/",
            link_run=link_run,
            link_task=link_task,
            grid_limit=GRID_LIMIT,
            **context,
        )
    )


def ns_text(ns: Optional[str]) -> str:
    return "all runs" if ns is None else ns


def flows_page(store: Any, ns: Optional[str]) -> str:
    return _render("flows.html", flows=facts.flows(store, ns), store_path=str(store.path), ns_text=ns_text(ns))


def runs_page(store: Any, flow: str, ns: Optional[str], tag: str, before: Optional[int]) -> str:
    tags = [tag] if tag else []
    page = facts.runs_page(store, flow, ns, tags, before)

    def query(cursor: Optional[int]) -> str:
        fields: Dict[str, Any] = {"ns": "" if ns is None else ns, "tag": tag}
        if cursor is not None:
            fields["before"] = cursor
        return urlencode(fields)

    return _render(
        "runs.html",
        flow=flow,
        ns_field="" if ns is None else ns,
        ns_text=ns_text(ns),
        tag_field=tag,
        before=before,
        query=query,
        **page,
    )


def run_page(store: Any, run: Run, report: bool = False) -> str:
    from markupsafe import Markup

    data = facts.run_page(store, run)
    return _render(
        "run.html",
        report=report,
        dag_svg=Markup(dagsvg.render(data["steps"], link=True)),
        timeline_svg=Markup(timeline.render(data["steps"], link=not report)),
        **data,
    )


def task_page(store: Any, task: Task) -> str:
    data = facts.task_page(store, task)
    flow, run_id = task.path_components[:2]
    return _render("task.html", flow=flow, run_pathspec=f"{flow}/{run_id}", **data)


def error_page(headline: str, message: str) -> str:
    return _render("error.html", headline=headline, message=message)
