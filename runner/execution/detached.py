"""Running a task away from the index: what the coordinator ships, and how it commits what comes back.

A task on a machine that may not open the store's index (a Dask worker)
gets a :class:`~cafstore.store.detached.Parcel`: the records of its parents,
the small objects of their artifact maps (parameters, the foreach lists its
frames index into) and the store's blob backend.  It runs against a
:class:`~cafstore.store.detached.DetachedStore`, writes its large objects
straight to the blob backend, and returns its record and small objects in
``TaskResult.detached``.  :func:`commit_detached` then does, in the
coordinator, what a local task does for itself: one write transaction that
checks the run still takes tasks, checks the large objects are in the
backend (``detached.adopt``), indexes everything and moves the task's ref.

Only the coordinator writes the index, so a remote attempt that dies or is
run twice (Dask re-runs work whose worker died) can never commit twice or
half: its result either reaches the coordinator whole, once, or not at all.
"""

from __future__ import annotations

import copy
from typing import Any, List

from cafstore.exception import CafstoreError, RunClosed
from cafstore.runner.execution.commit import check_open
from cafstore.runner.execution.spec import TaskResult, TaskSpec
from cafstore.store import ObjectId
from cafstore.store.detached import Parcel, adopt


def parcel_for(store: Any, base: Parcel, spec: TaskSpec) -> Parcel:
    """``base`` (the store's settings, see ``Parcel.of``) plus the small objects ``spec``'s task reads.

    The parents' records, every small artifact of their maps (a step may read
    any of them), the parameters and the foreach lists of the task's frames;
    large objects stay in the blob backend, which the task reads directly.
    """
    parcel = Parcel(base.store_path, base.backend, base.options, base.config)
    wanted: List[Any] = list(spec.params.values())
    wanted += [frame["values"] for frame in spec.foreach_stack if frame.get("values")]
    parcel.ship(store, [*wanted, *spec.parents])
    for parent in spec.parents:
        record = store.get_record(parent)
        wanted = list(record.get("artifacts", {}).values())
        wanted += [frame["values"] for frame in record.get("foreach_stack", []) if frame.get("values")]
        parcel.ship(store, wanted)
    return parcel


def commit_detached(store: Any, spec: TaskSpec, result: TaskResult) -> TaskResult:
    """Commit a detached attempt's bundle (objects, record, the task's ref) in one transaction.

    Returns the result to hand the scheduler: as it came if it carries no
    bundle, else with ``detached`` cleared and ``record`` committed -- or, if
    the run no longer takes tasks or the objects do not check out, a failed
    result that says why (nothing of the attempt is then written).
    """
    bundle = result.detached
    if bundle is None:
        return result
    done = copy.copy(result)
    done.detached = None
    try:
        with store.transaction() as txn:
            check_open(txn, spec, result.pid)
            adopt(store, txn, bundle)
            record_id = ObjectId(bundle["record"])
            if not txn.has_object(record_id):
                raise CafstoreError(f"Task {spec.pathspec} sent no record {record_id}; nothing was committed.")
            txn.set_ref(spec.ref, record_id)
    except CafstoreError as exc:
        done.status, done.record = "failed", None
        done.num_splits = done.foreach_values = done.next_steps = None
        done.error = _failure(exc, result)
        return done
    finally:
        store.close()  # the scheduler holds no LMDB handle between its own writes
    done.record = str(record_id)
    return done


def _failure(exc: CafstoreError, result: TaskResult) -> dict:
    error = {
        "type": f"cafstore.exception.{type(exc).__name__}",
        "message": str(exc),
        "traceback": "",
        "headline": "could not commit the task",
        "where": "",
        "user_error": True,
    }
    if isinstance(exc, RunClosed):
        error["run_closed"] = True
    if result.error:  # the step had failed too: keep its own description first
        return dict(result.error, message=f"{result.error.get('message', '')} ({exc})")
    return error


__all__ = ["commit_detached", "parcel_for"]
