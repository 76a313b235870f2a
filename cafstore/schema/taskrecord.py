"""The task record: the one builder, used by a task and by the scheduler for a task that died."""

from __future__ import annotations

import sys
from typing import Any, Dict, Iterable, Mapping, Optional

import cafstore
from cafstore.store import ObjectId

TASK_OK, TASK_FAILED = "ok", "failed"  # a task record's "status"
TASK_RUNNING = "running"  # the status of a running task's provisional record, which is never stored
EXCEPTION_FIELDS = ("type", "message", "traceback")
TASK_RECORD_FIELDS = (
    "kind",
    "flow",
    "run_id",
    "step",
    "task_id",
    "attempt",
    "status",
    "parents",
    "artifacts",
    "new_artifacts",
    "stdout",
    "stderr",
    "code",
    "started",
    "finished",
    "exception",
    "foreach_stack",
    "num_splits",
    "env",
    "cache_key",
    "previous_attempt",
)


def task_record(
    *,
    flow: str,
    run_id: int,
    step: str,
    task_id: int,
    attempt: int,
    status: str,
    parents: Iterable[Any],
    artifacts: Mapping[str, ObjectId],
    new_artifacts: Iterable[str],
    stdout: Optional[ObjectId],
    stderr: Optional[ObjectId],
    code: Any,
    started: float,
    finished: Optional[float],
    exception: Optional[Mapping[str, Any]],
    foreach_stack: Iterable[Mapping[str, Any]],
    num_splits: Optional[int],
    user: str,
    hostname: str,
    pid: int,
    previous_attempt: Any = None,
    cache_key: Optional[str] = None,
) -> Dict[str, Any]:
    """The canonical task record (docs/datamodel.md), ready for ``put_record``.

    Records are content-addressed: the same facts must give the same bytes,
    whoever writes them (the task process, or the scheduler for a task whose
    process died). Ids given as hex text (as task specs carry them across
    processes) become ObjectIds here, so gc and fsck see every reference.
    ``stdout``, ``stderr`` and ``finished`` are None only in a running task's
    provisional record (:func:`running_task_record`).
    """
    return {
        "kind": "task",
        "flow": flow,
        "run_id": run_id,
        "step": step,
        "task_id": task_id,
        "attempt": attempt,
        "status": status,
        "parents": [ObjectId(p) for p in parents],
        "artifacts": dict(artifacts),
        "new_artifacts": sorted(new_artifacts),
        "stdout": stdout,
        "stderr": stderr,
        "code": ObjectId(code),
        "started": started,
        "finished": finished,
        "exception": None if exception is None else {key: exception[key] for key in EXCEPTION_FIELDS},
        "foreach_stack": [dict(frame, values=ObjectId(frame["values"])) for frame in foreach_stack],
        "num_splits": num_splits,
        "env": {
            "python_version": sys.version.split()[0],
            "platform": sys.platform,
            "hostname": hostname,
            "pid": pid,
            "cafstore_version": cafstore.__version__,
            "user": user,
        },
        "cache_key": cache_key,
        "previous_attempt": ObjectId(previous_attempt) if previous_attempt else None,
    }


def running_task_record(
    *,
    flow: str,
    run_id: int,
    step: str,
    task_id: int,
    attempt: int,
    parents: Iterable[Any],
    code: Any,
    foreach_stack: Iterable[Mapping[str, Any]],
    user: str,
    started: float,
    hostname: str,
    pid: int,
    previous_attempt: Any = None,
) -> Dict[str, Any]:
    """What the client shows of a task while it runs, in its own process (never stored).

    The record the task will commit, less what only its end decides: status
    ``running``, no artifacts, no logs, not finished (as Metaflow shows a task
    that has started: its artifacts and ``_task_ok`` come when it ends).
    """
    return task_record(
        flow=flow,
        run_id=run_id,
        step=step,
        task_id=task_id,
        attempt=attempt,
        status=TASK_RUNNING,
        parents=parents,
        artifacts={},
        new_artifacts=(),
        stdout=None,
        stderr=None,
        code=code,
        started=started,
        finished=None,
        exception=None,
        foreach_stack=foreach_stack,
        num_splits=None,
        user=user,
        hostname=hostname,
        pid=pid,
        previous_attempt=previous_attempt,
    )
