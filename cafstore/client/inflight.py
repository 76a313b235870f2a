"""The task running in this process, which the client shows before it has a record.

A task is stored when it finishes: its record and its ref are written in one
transaction at commit (docs/datamodel.md). Yet a step may open itself through
the client while it runs -- ``Task(current.pathspec).parent.parent.add_tag(...)``,
``current.task``, ``Step('F/3/start')`` of its own step -- as Metaflow's
local mode allows (it registers a task when the task starts). The runner
registers the running task here, in the task's own process, and forgets it
when the step ends; the client then shows it as a task that has not finished:
no artifacts, no logs, ``finished`` and ``successful`` False.

Nothing is written to the store for this, so a crash at any moment leaves
nothing behind, gc and fsck see nothing new, and a task costs no extra write.
The price: only the task's own process sees it; another process (``cafstore
log``, a notebook) sees the task once it has committed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional, Union


@dataclasses.dataclass(frozen=True)
class RunningTask:
    """The running task: where its store is, and its provisional record (never stored)."""

    store_path: Path
    flow: str
    run_id: int
    step: str
    task_id: int
    record: Dict[str, Any]


_running: Optional[RunningTask] = None


def register(store_path: Union[str, Path], record: Dict[str, Any]) -> None:
    """Show the task ``record`` describes (``schema.running_task_record``) until :func:`clear`."""
    global _running
    _running = RunningTask(
        Path(store_path),  # resolved only when a step asks (``running``): most never do
        record["flow"],
        int(record["run_id"]),
        record["step"],
        int(record["task_id"]),
        record,
    )


def clear() -> None:
    """Forget the running task (its step ended: from now on its ref, if committed, says what it did)."""
    global _running
    _running = None


def running(store: Any, flow: str, run_id: int, step: Optional[str] = None) -> Optional[RunningTask]:
    """The task running in this process if it belongs to ``flow``/``run_id`` (and ``step``) of ``store``."""
    task = _running
    if task is None or task.flow != flow or task.run_id != int(run_id) or step not in (None, task.step):
        return None
    path = getattr(store, "path", None)
    if path is None or Path(path).resolve() != task.store_path.resolve():
        return None
    return task
