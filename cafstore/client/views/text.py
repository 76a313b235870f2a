"""Text for the client's commands (logs, dump, log, ls), shared by ``cafstore`` and ``python flow.py``.

Each function takes a store and returns (or yields) what to print, so the
two command lines stay thin and print the same thing. Pathspecs given on
a command line are explicit, so they are resolved without a namespace check
(like ``git show <sha>``); listings (``log``, ``ls``, ``tag list``) follow
the namespace. A view reads the model through its public API only.
"""

from __future__ import annotations

import heapq
import json
import reprlib
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence

from cafstore.client import logtext, pathspecs, runstate
from cafstore.client.artifacts import DataArtifact
from cafstore.client.flows import Flow, Metaflow, Run
from cafstore.client.tasks import Step, Task
from cafstore.exception import ClientError

_CLASSES = {1: Flow, 2: Run, 3: Step, 4: Task, 5: DataArtifact}


def resolve(store: Any, pathspec: str) -> Any:
    """The Flow, Run, Step, Task or DataArtifact named by ``pathspec`` (no namespace check)."""
    parts = pathspecs.parse_any(pathspec)
    return _CLASSES[len(parts)]("/".join(parts), store=store, _namespace_check=False)


def tasks_of(obj: Any) -> List[Task]:
    """A run's, step's or task's tasks in run order: steps start first, tasks by id."""
    if isinstance(obj, Task):
        return [obj]
    if isinstance(obj, Step):
        return list(reversed(list(obj)))
    if isinstance(obj, Run):
        return [task for step in reversed(list(obj)) for task in reversed(list(step))]
    raise ClientError(
        f"{obj.pathspec!r} is a {type(obj).__name__.lower()}, which has no tasks of its own: "
        "give a run, step or task pathspec (e.g. HelloFlow/3 or HelloFlow/3/start)."
    )


# -- logs ---------------------------------------------------------------------
def logs(
    store: Any, pathspec: str, streams: Sequence[str] = ("stdout", "stderr"), timestamps: bool = False
) -> Iterator[tuple]:
    """(stream, text) pieces to print for ``logs PATHSPEC``: headers go to stdout, per task."""
    obj = resolve(store, pathspec)
    tasks = tasks_of(obj)
    headers = not isinstance(obj, Task)
    for task in tasks:
        if headers:
            state = "" if task.successful else " (failed)"
            yield "stdout", f"--- {task.pathspec}{state} ---\n"
        for stream in streams:
            raw = task.log_bytes(stream)
            if timestamps:
                text = "".join(f"{_clock(when)} {line}\n" for when, line in logtext.lines(raw))
            else:
                text = logtext.text(raw)
            if text:
                yield stream, text if text.endswith("\n") else text + "\n"


def _clock(when: Any) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if when is not None else " " * 23


# -- dump ---------------------------------------------------------------------
def short_repr(value: Any, limit: int) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how much was left out."""
    try:
        text = repr(value)
    except Exception as exc:  # a user's __repr__ can raise anything; show that instead of failing
        return f"<unprintable {type(value).__name__}: {type(exc).__name__}: {exc}>"
    if limit <= 0 or len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _size_repr(value: Any, size: int, limit: int) -> str:
    if size > max(64 * limit, 1 << 20):  # avoid building a giant repr just to cut it
        brief = reprlib.Repr()
        brief.maxstring = brief.maxother = brief.maxlong = limit
        brief.maxlist = brief.maxtuple = brief.maxdict = brief.maxset = max(limit // 8, 6)
        return short_repr(_Verbatim(brief.repr(value)), limit)
    return short_repr(value, limit)


class _Verbatim(str):
    def __repr__(self) -> str:
        return str(self)


def dump(
    store: Any, pathspec: str, include: Optional[Iterable[str]] = None, max_value_size: int = 1000
) -> Dict[str, List[dict]]:
    """Artifacts per task pathspec: name, type, size, sha and the value shown (truncated).

    An artifact pathspec (``Flow/5/start/1/x``) dumps that one artifact of its task.
    """
    obj = resolve(store, pathspec)
    wanted = None if include is None else set(include)
    if isinstance(obj, DataArtifact):
        obj.sha  # noqa: B018 - raises NotFound for an artifact the task does not have
        wanted = {obj.id} if wanted is None else wanted & {obj.id}
        obj = obj.parent
    out: Dict[str, List[dict]] = {}
    for task in tasks_of(obj):
        rows = []
        for name, oid in sorted(task.artifact_ids.items()):
            if wanted is not None and name not in wanted:
                continue
            size = store.stat(oid).size
            value = task.artifact_value(name)
            row = {
                "name": name,
                "type": _type_name(value),
                "size": size,
                "sha": str(oid),
                "repr": _size_repr(value, size, max_value_size),
            }
            if _is_json(value) and len(json.dumps(value)) <= max_value_size:
                row["value"] = value
            rows.append(row)
        out[task.pathspec] = rows
    return out


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def dump_text(dumped: Dict[str, List[dict]]) -> str:
    lines = []
    for pathspec, rows in dumped.items():
        lines.append(f"--- {pathspec} ---")
        if not rows:
            lines.append("(no artifacts)")
        width = max((len(r["name"]) for r in rows), default=0)
        twidth = max((len(r["type"]) for r in rows), default=0)
        for r in rows:
            lines.append(f"{r['name']:<{width}}  {r['type']:<{twidth}}  {human_size(r['size']):>9}  {r['repr']}")
    return "\n".join(lines) + "\n"


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


# -- log (run history) --------------------------------------------------------
def runs_newest_first(store: Any, flow: Optional[str], ns: Optional[str]) -> Iterator[Run]:
    """Runs in namespace ``ns`` newest first: one flow's by id, all flows' merged by start time."""
    if flow is not None:
        yield from Flow(flow, store=store, _current_namespace=ns).runs()
        return
    streams = [
        Flow(f.id, store=store, _current_namespace=ns).runs() for f in Metaflow(store=store, _current_namespace=None)
    ]
    yield from heapq.merge(*streams, key=lambda r: -(r.ref_value.get("created") or 0.0))


def run_summary(run: Run) -> dict:
    meta = run.ref_value
    created, finished = meta.get("created"), meta.get("finished")
    status = run.status
    end = finished if finished is not None else (time.time() if status == runstate.RUNNING else None)
    flow, run_id = run.path_components
    return {
        "pathspec": run.pathspec,
        "flow": flow,
        "run_id": int(run_id),
        "status": status,
        "user": meta.get("user"),
        "user_tags": sorted(run.user_tags),
        "system_tags": sorted(run.system_tags),
        "created": created,
        "finished": finished,
        "duration": None if end is None or created is None else round(end - created, 3),
        "origin_run_id": meta.get("origin_run_id"),
        "resumed_from": meta.get("resumed_from"),
    }


def history(store: Any, flow: Optional[str], ns: Optional[str], limit: Optional[int] = None) -> List[dict]:
    out: List[dict] = []
    for run in runs_newest_first(store, flow, ns):
        if limit is not None and len(out) >= limit:
            break
        out.append(run_summary(run))
    return out


def _when(stamp: Optional[float]) -> str:
    return "-" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def duration_text(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _origin(summary: dict) -> str:
    source = summary["resumed_from"] or summary["origin_run_id"]
    if source is None:
        return ""
    text = f"resumed from {summary['flow']}/{source}"
    if summary["origin_run_id"] not in (None, source):
        text += f" (origin {summary['flow']}/{summary['origin_run_id']})"
    return text


def printable_tag(tag: str) -> str:
    """A tag (or user name) as a terminal may show it: one holding a control or bidirectional character
    (a user tag stored before cafstore.schema refused them, an odd $CAFSTORE_USER) is shown escaped, so
    it cannot garble or reorder the line."""
    return tag if tag.isprintable() else repr(tag)


def tag_list(tags: Sequence[str], limit: int = 40) -> str:
    """Tags joined by commas, cut at whole tags to about ``limit`` characters with ``+N more``."""
    shown: List[str] = []
    used = 0
    for tag in map(printable_tag, tags):
        if shown and used + 1 + len(tag) > limit:
            break
        shown.append(tag if len(tag) <= limit else tag[: limit - 3] + "...")
        used += len(shown[-1]) + (1 if len(shown) > 1 else 0)
    left = len(tags) - len(shown)
    return ",".join(shown) + (f" +{left} more" if left else "")


def _widths(rows: Sequence[Sequence[str]]) -> List[int]:
    return [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []


def history_text(summaries: List[dict], oneline: bool = False) -> str:
    lines: List[str] = []
    if oneline:
        rows = [(s["pathspec"], s["status"], printable_tag(s["user"] or "-")) for s in summaries]
        widths = _widths(rows)  # from the rows shown, so a long flow or user name never shifts a column
        for row, s in zip(rows, summaries):
            extra = "  ".join(x for x in (tag_list(s["user_tags"]), _origin(s)) if x)
            cells = " ".join(f"{cell:<{width}}" for cell, width in zip(row, widths))
            lines.append(f"{cells} {_when(s['created'])} {duration_text(s['duration']):>8}  {extra}".rstrip())
        return "\n".join(lines) + ("\n" if lines else "")
    for s in summaries:
        status = s["status"] + (" (scheduler died: the run will not finish)" if s["status"] == "crashed" else "")
        lines.append(f"run {s['pathspec']}  {status}")
        lines.append(f"User:     {printable_tag(s['user'] or '-')}")
        user_tags = ", ".join(map(printable_tag, s["user_tags"])) or "-"
        lines.append(f"Tags:     {user_tags}   (system: {', '.join(map(printable_tag, s['system_tags']))})")
        lines.append(
            f"Started:  {_when(s['created'])}   Duration: {duration_text(s['duration'])}"
            + ("" if s["status"] != "running" else " so far")
        )
        if _origin(s):
            lines.append(f"Origin:   {_origin(s)}")
        lines.append("")
    return "\n".join(lines)


# -- ls -----------------------------------------------------------------------
def listing(store: Any, pathspec: Optional[str], ns: Optional[str]) -> List[str]:
    """One line per child of ``pathspec`` (flows, runs, steps, tasks or artifacts)."""
    if not pathspec:
        out = []
        for flow in Metaflow(store=store, _current_namespace=ns):
            latest = flow.latest_run
            out.append(f"{flow.id:<24} latest: {latest.pathspec if latest else '-'}")
        return out
    obj = resolve(store, pathspec)
    if isinstance(obj, Flow):
        flow = Flow(obj.id, store=store, _current_namespace=ns)
        rows = [(r.pathspec, r.status, r.user or "-", _when(r.ref_value.get("created"))) for r in flow.runs()]
        widths = _widths(rows)
        return [" ".join(f"{cell:<{width}}" for cell, width in zip(row, widths)).rstrip() for row in rows]
    if isinstance(obj, Run):
        steps = list(reversed(list(obj)))
        width = max((len(s.pathspec) for s in steps), default=0)
        return [f"{s.pathspec:<{width}}  {len(s)} task(s)" for s in steps]
    if isinstance(obj, Step):
        tasks = tasks_of(obj)
        width = max((len(t.pathspec) for t in tasks), default=0)
        return [f"{t.pathspec:<{width}}  {'ok' if t.successful else 'failed':<6}  attempt {t.attempt}" for t in tasks]
    if isinstance(obj, Task):
        arts = list(obj)
        width = max((len(a.pathspec) for a in arts), default=0)
        return [f"{a.pathspec:<{width}}  {human_size(a.size)}" for a in arts] or [f"{obj.pathspec}: no artifacts"]
    return [f"{obj.pathspec}  {human_size(obj.size)}  {obj.sha}"]
