"""The refs a run writes (docs/datamodel.md): names, the run's birth and end.

Everything here is one LMDB transaction per change, so a reader sees a run
before or after each step of its life, never half of one.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
import time
from typing import Any, Dict, Iterable, List, Optional

import cafstore
from cafstore.exception import CommandLineError
from cafstore.store import ObjectId

RUNTIME = "dev"


def flow_ref(flow: str) -> str:
    return f"flows/{flow}"


def run_ref(flow: str, run_id: int) -> str:
    return f"runs/{flow}/{run_id:010d}"


def task_ref(flow: str, run_id: int, step: str, task_id: int) -> str:
    return f"tasks/{flow}/{run_id:010d}/{step}/{task_id:010d}"


def username() -> str:
    """``CAFSTORE_USER``, else ``USER``, else ``USERNAME``, else the login name."""
    for var in ("CAFSTORE_USER", "USER", "USERNAME"):
        value = os.environ.get(var)
        if value:
            return value
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (containers): still run
        return "unknown"


def system_tags(user: str) -> List[str]:
    return sorted([
        f"user:{user}", f"runtime:{RUNTIME}", f"python_version:{sys.version.split()[0]}",
        f"cafstore_version:{cafstore.__version__}",
    ])


def clean_tags(tags: Iterable[str]) -> List[str]:
    """User tags as stored: sorted, unique; any text but the empty string."""
    out = set()
    for tag in tags:
        if not tag.strip():
            raise CommandLineError("A --tag cannot be empty; tags may hold any text, including spaces.")
        out.add(tag)
    return sorted(out)


class RunInfo:
    """What the scheduler needs to know about the run it executes."""

    def __init__(self, flow: str, run_id: int, code: ObjectId, params: Dict[str, ObjectId], user: str,
                 user_tags: List[str], sys_tags: List[str]) -> None:
        self.flow, self.run_id, self.code, self.params = flow, run_id, code, params
        self.user, self.user_tags, self.system_tags = user, user_tags, sys_tags

    @property
    def pathspec(self) -> str:
        return f"{self.flow}/{self.run_id}"

    @property
    def tags(self) -> List[str]:
        return sorted(set(self.user_tags) | set(self.system_tags))


def start_run(store: Any, flow: str, flow_file: str, graph: Dict[str, Any], params: Dict[str, Any],
              user: str, user_tags: List[str], origin_run_id: Optional[int] = None,
              extra_system_tags: Iterable[str] = (), resumed_from: Optional[int] = None) -> RunInfo:
    """Allocate the run id and create the run ref, with its code, graph and parameters, atomically."""
    with open(flow_file, "rb") as handle:
        code_bytes = handle.read()
    tags = sorted(set(system_tags(user)) | set(extra_system_tags))  # e.g. production:<token> (--production)
    with store.transaction() as txn:
        run_id = txn.next_counter(f"run_id/{flow}")
        code = txn.put_bytes(code_bytes)
        graph_id = txn.put_record(graph)
        param_ids = {name: txn.put_artifact(value, name) for name, value in params.items()}
        now = time.time()
        if txn.get_ref(flow_ref(flow)) is None:
            txn.set_ref(flow_ref(flow), {"name": flow, "created": now})
        txn.set_ref(run_ref(flow, run_id), {
            "flow": flow, "run_id": run_id, "status": "running", "user": user,
            "user_tags": user_tags, "system_tags": tags, "parameters": param_ids,
            "created": now, "finished": None, "origin_run_id": origin_run_id, "resumed_from": resumed_from,
            "code": code, "code_path": os.path.basename(flow_file), "graph": graph_id,
            "pid": os.getpid(), "host": socket.gethostname(), "deleted": None,
        })
    return RunInfo(flow, run_id, code, param_ids, user, user_tags, tags)


def finish_run(store: Any, flow: str, run_id: int, status: str) -> None:
    """Mark the run succeeded or failed (one read-modify-write, so concurrent tag edits survive)."""

    def change(meta: Optional[dict]) -> dict:
        meta = dict(meta or {})
        meta.update(status=status, finished=time.time())
        return meta

    store.update_ref(run_ref(flow, run_id), change)


def record_lost_task(store: Any, spec: Any, message: str, previous: Optional[str] = None) -> ObjectId:
    """A failed record for a task whose process died before it could write one (killed, crashed)."""
    with store.transaction() as txn:
        empty = txn.put_bytes(b"")
        record = {
            "kind": "task", "flow": spec.flow_name, "run_id": spec.run_id, "step": spec.step,
            "task_id": spec.task_id, "attempt": spec.attempt, "status": "failed",
            "parents": [ObjectId(p) for p in spec.parents], "artifacts": {}, "new_artifacts": [],
            "stdout": empty, "stderr": empty, "code": ObjectId(spec.code),
            "started": time.time(), "finished": time.time(),
            "exception": {"type": "TaskFailed", "message": message, "traceback": ""},
            "foreach_stack": [dict(f, values=ObjectId(f["values"])) for f in spec.foreach_stack],
            "num_splits": None,
            "env": {"python_version": sys.version.split()[0], "platform": sys.platform,
                    "hostname": socket.gethostname(), "pid": 0, "cafstore_version": cafstore.__version__,
                    "user": spec.user},
            "cache_key": None,
            "previous_attempt": ObjectId(previous or spec.previous_attempt) if (previous or spec.previous_attempt) else None,
        }
        record_id = txn.put_record(record)
        txn.set_ref(task_ref(spec.flow_name, spec.run_id, spec.step, spec.task_id), record_id)
    return record_id
