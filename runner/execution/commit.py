"""A task's last act: its logs, small artifacts and record, written in one go.

Two destinations, one record: :func:`commit` writes into the store's index
(the local executors: the task process opens the store itself), inside one
LMDB transaction that also moves the task's ref -- only if the run still
takes tasks.  :func:`detach` writes the same things into a
:class:`~cafstore.store.detached.DetachedStore` (a task on a machine that
may not open the index), whose bundle the coordinator commits later with
:func:`cafstore.runner.execution.detached.commit_detached`.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Tuple

from cafstore import schema
from cafstore.exception import RunClosed
from cafstore.runner.execution.spec import TaskSpec
from cafstore.store import ObjectId


class Outcome:
    """What an attempt made, as the record needs it."""

    __slots__ = ("ids", "new", "small", "out", "err", "error", "num_splits", "started", "host")

    def __init__(
        self,
        ids: Dict[str, ObjectId],
        new: List[str],
        small: List[Tuple[str, Any]],
        out: bytes,
        err: bytes,
        error: Optional[Dict[str, Any]],
        num_splits: Optional[int],
        started: float,
        host: Optional[str],
    ) -> None:
        self.ids, self.new, self.small, self.out, self.err = ids, new, small, out, err
        self.error, self.num_splits, self.started, self.host = error, num_splits, started, host


def write_record(sink: Any, spec: TaskSpec, outcome: Outcome) -> ObjectId:
    """Small artifacts, logs and the record into ``sink`` (a ``Transaction`` or a ``DetachedStore``)."""
    ids = outcome.ids
    for name, blob in outcome.small:
        ids[name] = sink.put_serialized(blob)
    record = schema.task_record(
        **spec.record_fields(),
        status=schema.TASK_FAILED if outcome.error else schema.TASK_OK,
        artifacts=ids,
        new_artifacts=outcome.new,
        stdout=sink.put_bytes(outcome.out),
        stderr=sink.put_bytes(outcome.err),
        started=outcome.started,
        finished=time.time(),
        exception=outcome.error,
        num_splits=outcome.num_splits,
        hostname=outcome.host,
        pid=os.getpid(),
    )
    return sink.put_record(record)


def check_open(txn: Any, spec: TaskSpec, pid: int) -> None:
    """Raise :class:`RunClosed` if the task's run no longer takes tasks (read inside ``txn``)."""
    closed = schema.closed_to_tasks(txn.get_ref(schema.run_ref(spec.flow_name, spec.run_id)))
    if closed is not None:
        raise RunClosed(
            f"Task {spec.pathspec} (pid {pid}) finished after its run stopped taking tasks: "
            f"{closed}. Nothing of this task was committed; its output is above, if it printed any."
        )


def commit(store: Any, spec: TaskSpec, outcome: Outcome) -> ObjectId:
    """Write logs, small artifacts, the record and the task ref in one transaction.

    Only into a run that still takes tasks (``schema.closed_to_tasks``, read
    inside the same transaction): else :class:`RunClosed`, and nothing is written.
    """
    with store.transaction() as txn:
        check_open(txn, spec, os.getpid())
        record_id = write_record(txn, spec, outcome)
        txn.set_ref(spec.ref, record_id)
    return record_id


def detach(store: Any, spec: TaskSpec, outcome: Outcome) -> Tuple[ObjectId, Dict[str, Any]]:
    """The record written into a detached store; with the bundle the coordinator commits."""
    record_id = write_record(store, spec, outcome)
    bundle = store.bundle()
    bundle["record"] = str(record_id)
    return record_id, bundle
