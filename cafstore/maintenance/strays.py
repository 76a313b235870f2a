"""Refs that belong to no run: task refs whose run ref does not exist.

A run's ref is created (``runner/execution/runs.start_run``) before any of
its tasks can write a task ref, and gc drops a run's ref together with its
task refs in one transaction.  So a task ref without its run ref can only
be a leftover: a task that outlived its scheduler and committed after
``cafstore rm`` and gc had dropped the run (cafstore versions before task
commits checked their run), or a hand-edited store.  Such a ref would keep
its record and artifacts alive for ever, while no command can show or
remove its run.

Nothing can make such a ref belong to a run again (run ids are never
reused), so no grace period is needed: fsck notes them, and ``gc`` and
``fsck --repair`` remove them (:func:`remove`), each deletion re-checking
inside its transaction that the run ref is still absent.
"""

from __future__ import annotations

from typing import Any, List

from cafstore import schema
from cafstore.exception import CafstoreError


def find(store: Any) -> List[str]:
    """Names of the task refs whose run ref does not exist, in name order."""
    runs = set()
    for key, _ in store.scan("refs", schema.RUNS_PREFIX.encode()):
        parsed = schema.parse_run_ref(key.decode("utf-8", "replace"))
        if parsed is not None:
            runs.add(parsed)
    out = []
    for key, _ in store.scan("refs", schema.TASKS_PREFIX.encode()):
        name = key.decode("utf-8", "replace")
        task = schema.parse_task_ref(name)
        if task is not None and (task[0], task[1]) not in runs:
            out.append(name)
    return out


def describe(name: str) -> str:
    """One line for fsck: which ref, and which run it names that does not exist."""
    parsed = schema.parse_task_ref(name)
    run = f"{parsed[0]}/{parsed[1]}" if parsed else "?"
    return (
        f"ref {name!r} belongs to no run (run {run} does not exist); "
        "`cafstore gc` or `cafstore fsck --repair` removes it"
    )


def _run_exists(txn: Any, flow: str, run_id: int) -> bool:
    """Whether the run ref is there; one that cannot be decoded is there too (never delete on a guess)."""
    try:
        return txn.get_ref(schema.run_ref(flow, run_id)) is not None
    except (CafstoreError, ValueError):
        return True


def remove(store: Any, names: List[str], batch: int = 500) -> List[str]:
    """Delete the refs in ``names`` whose run ref is still absent; the names deleted."""
    removed: List[str] = []
    for start in range(0, len(names), batch):
        group = names[start : start + batch]

        def body(txn: Any, group: List[str] = group) -> List[str]:
            gone = []
            for name in group:
                parsed = schema.parse_task_ref(name)
                if parsed is None or _run_exists(txn, parsed[0], parsed[1]):
                    continue
                if txn.delete_ref(name):
                    gone.append(name)
            return gone

        removed.extend(store.atomically(body))
    return removed
