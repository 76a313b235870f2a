"""A task's metadata as Metaflow's client shows it, derived from its task record and its run.

Metaflow records metadata per task as separate events (``attempt``,
``origin-run-id``, ``attempt_ok``, the system info...); code written for it
reads them back through ``task.metadata`` (a list of ``Metadata`` tuples,
values as strings) and ``task.metadata_dict``. cafstore records the same
facts once, in the task record and the run ref (docs/datamodel.md), so this
module spells them out under Metaflow's names instead of storing them twice.

Resume: in a resumed run, every task carries ``origin-run-id`` (the run it
was resumed from); a task the resume reused (its ref points at a record
another run computed) also carries ``origin-task-id``, the id of the task of
that origin run that holds the same record -- which is what lets
``task.origin_pathspec`` name it, as Metaflow's cloned tasks do.
"""

from __future__ import annotations

import contextlib
import reprlib
from typing import Any, Dict, List, Mapping, Optional

from cafstore import schema
from cafstore.client import damaged
from cafstore.exception import CafstoreError

MAX_FOREACH_VALUE_CHARS = 30  # Metaflow shows at most this much of a foreach item's value


def _stamp(seconds: Any) -> Optional[int]:
    """Metaflow's ``created_at``: milliseconds since the epoch."""
    return None if seconds is None else int(round(float(seconds) * 1000))


def _item_text(item: Any) -> str:
    if isinstance(item, (str, int, float, bool)):
        return str(item)[:MAX_FOREACH_VALUE_CHARS]
    return reprlib.Repr().repr(item)[:MAX_FOREACH_VALUE_CHARS]


def _foreach_facts(store: Any, frames: List[dict]) -> Dict[str, Any]:
    """``foreach-stack`` (``var=value`` per frame) and ``foreach-execution-path`` (``step:index,...``)."""
    if not frames:
        return {}
    shown = []
    for frame in frames:
        try:
            values = store.get_artifact(frame["values"]) if frame.get("values") else None
            item = values[int(frame["index"])] if values is not None else frame.get("index")
        except (CafstoreError, LookupError, TypeError, ValueError):
            item = frame.get("index")  # an unreadable list: the position is still a fact worth showing
        shown.append(f"{frame.get('var')}={_item_text(item)}")
    path = ",".join(f"{f.get('step')}:{f.get('index')}" for f in frames)
    return {"foreach-stack": shown, "foreach-execution-path": path}


def origin_task_id(store: Any, flow: str, origin_run: int, step: str, oid: Any, record: dict) -> str:
    """The id of the task of ``origin_run`` whose ref holds record ``oid`` (where a reused task came
    from); the record's own task id when that run has none (it computed the record itself)."""
    if origin_run != record.get("run_id"):
        prefix = schema.tasks_prefix(flow, origin_run, step)
        with contextlib.suppress(CafstoreError):
            with contextlib.closing(damaged.task_refs(store, prefix)) as scan:
                for key, found in scan:
                    if found == oid:
                        parsed = schema.parse_task_ref(key)
                        if parsed is not None:
                            return str(parsed[3])
    return str(record.get("task_id"))


def origin_of(store: Any, flow: str, run_meta: Mapping[str, Any], step: str, oid: Any, record: dict) -> Optional[tuple]:
    """(run id, task id) of the task a reused task was taken from, or None for a task its run ran.

    In a resumed run that is the run resumed from (Metaflow's clone origin); for a task ``run
    --cache`` reused, the run and task that computed the record.
    """
    here = run_meta.get("run_id")
    if record.get("run_id") in (None, here):
        return None
    resumed_from = run_meta.get("resumed_from")
    if resumed_from is None:
        return int(record["run_id"]), str(record.get("task_id"))
    return int(resumed_from), origin_task_id(store, flow, int(resumed_from), step, oid, record)


def task_facts(store: Any, flow: str, run_meta: Mapping[str, Any], step: str, oid: Any, record: dict) -> list:
    """(name, value, created_at ms, type) for each metadata item of the task whose record is ``record``.

    Names and value formats are Metaflow's local mode's (strings), plus a few
    cafstore adds (``started``, ``finished``, ``status``, ``platform``,
    ``hostname``, ``pid``, ``num-splits``, ``cache-key``).
    """
    started, finished = _stamp(record.get("started")), _stamp(record.get("finished"))
    env = record.get("env") or {}
    items: Dict[str, Any] = {
        "attempt": str(record.get("attempt", 0)),
        "runtime": "dev",
        "python_version": env.get("python_version"),
        "user": env.get("user") or run_meta.get("user"),
        "cafstore_version": env.get("cafstore_version"),
        "script-name": run_meta.get("code_path"),
        "ds-type": "local",
        "ds-root": str(store.path),
        "platform": env.get("platform"),
        "hostname": env.get("hostname"),
        "pid": None if env.get("pid") is None else str(env.get("pid")),
        "status": record.get("status"),
        "started": started,
        "finished": finished,
    }
    items.update(_foreach_facts(store, record.get("foreach_stack") or []))
    for key in ("num_splits", "cache_key"):
        if record.get(key) is not None:
            items[key.replace("_", "-")] = str(record[key])
    resumed_from = run_meta.get("resumed_from")
    if resumed_from is not None:
        items["origin-run-id"] = str(resumed_from)
    origin = origin_of(store, flow, run_meta, step, oid, record)
    if origin is not None:
        items["origin-run-id"], items["origin-task-id"] = str(origin[0]), origin[1]
    if record.get("finished") is not None:  # Metaflow records attempt_ok when the attempt ends
        items["attempt_ok"] = str(record.get("status") == "ok")
    kinds = {"attempt_ok": "internal_attempt_status"}
    return [
        (name, value, finished if name == "attempt_ok" else started, kinds.get(name, name))
        for name, value in items.items()
        if value is not None
    ]
