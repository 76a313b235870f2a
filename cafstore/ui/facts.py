"""What the pages show, gathered from the client as plain data (no HTML here).

A run page needs every task's record (status, times, worker, where it was
computed), read once per request: for a 1,000-task foreach that is 1,000
record reads, which is the page's main cost (benchmarks/ui_bench.py). The
templates and the pictures (:mod:`.dagsvg`, :mod:`.timeline`) only format
what is gathered here.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional

from cafstore.client import Flow, Metaflow, Run, Task, logtext
from cafstore.client.views.text import duration_text, human_size, run_summary, short_repr

RUNS_PER_PAGE = 50
LOG_LINES = 5000  # per stream: a page with more shows the last ones and says how many were left out


def flows(store: Any, ns: Optional[str]) -> List[Dict[str, Any]]:
    out = []
    for flow in Metaflow(store=store, _current_namespace=None):
        latest = Flow(flow.id, store=store, _current_namespace=ns).latest_run
        out.append({"name": flow.id, "latest": None if latest is None else summary(latest)})
    return out


def summary(run: Run) -> Dict[str, Any]:
    s = run_summary(run)
    s["duration_text"] = duration_text(s["duration"])
    s["started_text"] = when(s["created"])
    return s


def when(stamp: Optional[float]) -> str:
    return "-" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def runs_page(store: Any, flow: str, ns: Optional[str], tags: List[str], before: Optional[int]) -> Dict[str, Any]:
    """One page of a flow's runs, newest first: those with an id below ``before`` (a cursor, so page 200
    of 10,000 runs costs what page 1 does, and a run started meanwhile does not shift the pages)."""
    Flow(flow, store=store, _current_namespace=None)  # NotFound for a flow that does not exist
    handle = Flow(flow, store=store, _current_namespace=ns)
    listing: Iterator[Run] = handle.runs(*tags) if before is None else handle.runs_before(before, *tags)
    shown = list(itertools.islice(listing, RUNS_PER_PAGE + 1))
    more = len(shown) > RUNS_PER_PAGE
    shown = shown[:RUNS_PER_PAGE]
    return {
        "runs": [summary(run) for run in shown],
        "older": int(shown[-1].id) if more else None,
    }


#: facts derived from a task record, by record id: records are immutable, so an entry never goes stale,
#: and a live run page polled every second re-reads only the records of tasks that finished since
_RECORD_FACTS: "OrderedDict[Any, Dict[str, Any]]" = OrderedDict()
RECORD_FACTS_KEPT = 100_000


def _record_facts(task: Task) -> Dict[str, Any]:
    key = task.record_id
    if key is not None and key in _RECORD_FACTS:
        return _RECORD_FACTS[key]
    record = task.record
    env = record.get("env") or {}
    frames = record.get("foreach_stack") or []
    facts = {
        "status": "succeeded" if record.get("status") == "ok" else "failed",
        "started": record.get("started"),
        "finished": record.get("finished"),
        "attempt": record.get("attempt", 0),
        "worker": f"{env.get('hostname', '?')}:{env.get('pid', '?')}",
        "computed_in": record.get("run_id"),
        "num_splits": record.get("num_splits"),
        "index": frames[-1].get("index") if frames else None,
    }
    if key is not None:
        _RECORD_FACTS[key] = facts
        if len(_RECORD_FACTS) > RECORD_FACTS_KEPT:
            _RECORD_FACTS.popitem(last=False)
    return facts


def forget_record_facts() -> None:
    """Empty the cache of record facts (for measuring a page as its first reader sees it)."""
    _RECORD_FACTS.clear()


def _task_fact(task: Task, run_id: int) -> Dict[str, Any]:
    fact = dict(_record_facts(task))
    computed_in = fact.pop("computed_in")
    fact.update(
        id=task.id,
        step=task.path_components[2],
        pathspec=task.pathspec,
        reused_from=computed_in if computed_in not in (None, run_id) else None,
    )
    return fact


def _step_status(run_status: str, tasks: List[Dict[str, Any]], expected: Optional[int], later_started: bool) -> str:
    if not tasks:
        return "pending" if run_status == "running" else "not run"
    if any(t["status"] == "failed" for t in tasks):
        return "failed"
    if run_status == "running" and (len(tasks) < expected if expected is not None else not later_started):
        return "running"
    return "succeeded"


def _expected(
    node: Dict[str, Any],
    nodes: Dict[str, Dict[str, Any]],
    by_step: Dict[str, List[Dict[str, Any]]],
    known: Dict[str, Optional[int]],
) -> Optional[int]:
    """How many tasks step ``node`` will have, when the graph and the tasks so far tell (None otherwise):
    one outside a foreach; a foreach's fan-out for the step it splits into; a linear step inside a
    foreach as many as the step before it. A switch may loop, so its steps are never counted."""
    parents = [p for p in node.get("in_funcs") or () if p in nodes]
    if any(nodes[p].get("type") == "split-switch" or p == node["name"] for p in parents) or node.get("type") == (
        "split-switch"
    ):
        return None
    inside = node.get("is_inside_foreach")
    if inside is None:  # no recorded graph: nothing is known
        return None
    if not inside:
        return 1
    if len(parents) == 1 and nodes[parents[0]].get("foreach") is not None:
        tasks = by_step.get(parents[0]) or []
        return sum(t["num_splits"] or 0 for t in tasks) if tasks else None
    if len(parents) == 1 and node.get("type") != "join":
        return known.get(parents[0])
    return None


def run_page(store: Any, run: Run) -> Dict[str, Any]:
    """The run's summary, parameters, steps (status, task counts, fan-out) and every task's facts."""
    s = summary(run)
    run_id = int(run.id)
    graph = run.graph_steps() or [
        {"name": name, "next": [], "type": "linear", "is_inside_foreach": None} for name in run.step_names()
    ]
    by_step: Dict[str, List[Dict[str, Any]]] = {}
    for node in graph:
        step_tasks = []
        if run.has_step(node["name"]):
            step_tasks = [_task_fact(task, run_id) for task in run[node["name"]]]
        by_step[node["name"]] = sorted(step_tasks, key=lambda t: int(t["id"]))
    nodes = {node["name"]: node for node in graph}
    expectations: Dict[str, Optional[int]] = {}
    steps = []
    for node in graph:
        tasks = by_step[node["name"]]
        expected = _expected(node, nodes, by_step, expectations)
        expectations[node["name"]] = expected
        later = any(by_step.get(n) for n in node.get("next") or () if n != node["name"])
        fanout = None
        if node.get("foreach") is not None and tasks:
            fanout = sum(t["num_splits"] or 0 for t in tasks)
        steps.append(
            {
                "name": node["name"],
                "type": node.get("type", "linear"),
                "next": list(node.get("next") or ()),
                "foreach": node.get("foreach"),
                "switch_cases": node.get("switch_cases") or {},
                "tasks": tasks,
                "count": len(tasks),
                "expected": expected,
                "fanout": fanout,
                "failed": sum(t["status"] == "failed" for t in tasks),
                "reused": sum(t["reused_from"] is not None for t in tasks),
                "status": _step_status(s["status"], tasks, expected, later),
            }
        )
    return {"run": s, "parameters": parameters(store, run), "steps": steps, "live": s["status"] == "running"}


def parameters(store: Any, run: Run) -> List[Dict[str, str]]:
    """The run's parameters with short values (one too big to preview shows its size instead)."""
    out = []
    for name, oid in sorted((run.ref_value.get("parameters") or {}).items()):
        size = store.stat(oid).size
        if size > 1 << 20:
            shown = f"({human_size(size)})"
        else:
            try:
                shown = short_repr(store.get_artifact(oid, name=name), 200)
            except Exception as exc:  # an unreadable parameter must not take the whole page down
                shown = f"<unreadable: {type(exc).__name__}: {exc}>"
        out.append({"name": name, "value": shown})
    return out


def _log(task: Task, stream: str) -> Dict[str, Any]:
    lines = list(logtext.lines(task.log_bytes(stream)))
    dropped = max(0, len(lines) - LOG_LINES)
    shown = [
        {"when": "" if stamp is None else stamp.strftime("%H:%M:%S.%f")[:-3], "text": text}
        for stamp, text in lines[dropped:]
    ]
    return {"stream": stream, "lines": shown, "dropped": dropped}


def _attempt(task: Task) -> Dict[str, Any]:
    exc = task.exception
    return {
        "attempt": task.attempt,
        "status": "succeeded" if task.successful else "failed",
        "started": when(task.record.get("started")),
        "finished": when(task.record.get("finished")),
        "exception": None if exc is None else {"type": exc.type, "message": exc.message, "traceback": exc.traceback},
        "logs": [_log(task, "stdout"), _log(task, "stderr")],
    }


def task_page(store: Any, task: Task) -> Dict[str, Any]:
    """The task's facts, its artifacts with previews, and each attempt's logs and exception (newest first)."""
    from cafstore.ui.preview import artifact_rows

    run_id = int(task.path_components[1])
    fact = _task_fact(task, run_id)
    started, finished = fact["started"], fact["finished"]
    fact["started_text"], fact["finished_text"] = when(started), when(finished)
    fact["duration_text"] = duration_text(None if started is None or finished is None else finished - started)
    attempts = [_attempt(task)]
    for number in range(task.attempt - 1, -1, -1):
        earlier = Task(task.pathspec, attempt=number, store=store, _namespace_check=False)
        attempts.append(_attempt(earlier))
    return {
        "task": fact,
        "origin": task.origin_pathspec,
        "foreach": [f"{frame.get('var')}[{frame.get('index')}]" for frame in task.record.get("foreach_stack") or ()],
        "parents": task.parent_task_pathspecs,
        "artifacts": artifact_rows(store, task),
        "attempts": attempts,
    }
