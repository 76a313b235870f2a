"""The refs a run writes: the run's birth and end, and the record of a task that died.

Ref names and the task record's fields are cafstore.schema's (the data
model, docs/datamodel.md). Everything here is one LMDB transaction per
change, so a reader sees a run before or after each step of its life,
never half of one.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Dict, Iterable, List, Optional

import cafstore
from cafstore import schema
from cafstore.exception import CommandLineError, TaggingError
from cafstore.store import ObjectId

RUNTIME = "dev"


def system_tags(user: str) -> List[str]:
    return sorted(
        [
            f"user:{user}",
            f"runtime:{RUNTIME}",
            f"python_version:{sys.version.split()[0]}",
            f"cafstore_version:{cafstore.__version__}",
        ]
    )


def clean_tags(tags: Iterable[str]) -> List[str]:
    """User tags as stored: sorted, unique, each passing schema.user_tag_problem (a bad one is a
    CommandLineError naming it: it came from ``--tag``)."""
    try:
        return sorted(set(schema.check_user_tags(list(tags), "--tag")))
    except TaggingError as exc:
        raise CommandLineError(str(exc)) from exc


class RunInfo:
    """What the scheduler needs to know about the run it executes."""

    def __init__(
        self,
        flow: str,
        run_id: int,
        code: ObjectId,
        params: Dict[str, ObjectId],
        user: str,
        user_tags: List[str],
        sys_tags: List[str],
    ) -> None:
        self.flow, self.run_id, self.code, self.params = flow, run_id, code, params
        self.user, self.user_tags, self.system_tags = user, user_tags, sys_tags

    @property
    def pathspec(self) -> str:
        return f"{self.flow}/{self.run_id}"

    @property
    def tags(self) -> List[str]:
        return sorted(set(self.user_tags) | set(self.system_tags))


def start_run(
    store: Any,
    flow: str,
    flow_file: str,
    graph: Dict[str, Any],
    params: Dict[str, Any],
    user: str,
    user_tags: List[str],
    origin_run_id: Optional[int] = None,
    extra_system_tags: Iterable[str] = (),
    resumed_from: Optional[int] = None,
) -> RunInfo:
    """Allocate the run id and create the run ref, with its code, graph and parameters, atomically."""
    with open(flow_file, "rb") as handle:
        code_bytes = handle.read()
    tags = sorted(set(system_tags(user)) | set(extra_system_tags))  # e.g. production:<token> (--production)
    with store.transaction() as txn:
        run_id = txn.next_counter(schema.run_counter(flow))
        code = txn.put_bytes(code_bytes)
        graph_id = txn.put_record(graph)
        param_ids = {name: txn.put_artifact(value, name) for name, value in params.items()}
        now = time.time()
        if txn.get_ref(schema.flow_ref(flow)) is None:
            txn.set_ref(schema.flow_ref(flow), {"name": flow, "created": now})
        txn.set_ref(
            schema.run_ref(flow, run_id),
            {
                "flow": flow,
                "run_id": run_id,
                "status": schema.RUNNING,
                "user": user,
                "user_tags": user_tags,
                "system_tags": tags,
                "parameters": param_ids,
                "created": now,
                "finished": None,
                "origin_run_id": origin_run_id,
                "resumed_from": resumed_from,
                "code": code,
                "code_path": os.path.basename(flow_file),
                "graph": graph_id,
                "pid": os.getpid(),
                "pid_start": schema.process_start_id(os.getpid()),
                "host": schema.hostname(),
                "deleted": None,
            },
        )
    return RunInfo(flow, run_id, code, param_ids, user, user_tags, tags)


def finish_run(store: Any, flow: str, run_id: int, status: str) -> None:
    """Mark the run succeeded or failed (one read-modify-write, so concurrent tag edits survive)."""

    def change(meta: Optional[dict]) -> dict:
        meta = dict(meta or {})
        meta.update(status=status, finished=time.time())
        return meta

    store.update_ref(schema.run_ref(flow, run_id), change)


def record_lost_task(
    store: Any, spec: Any, message: str, previous: Optional[str] = None, stdout: bytes = b"", stderr: bytes = b""
) -> ObjectId:
    """A failed record for a task whose process died before it could write one (killed, crashed),
    with what it had printed (``stdout``/``stderr``: stored log bytes, as the executor recovered them)."""
    with store.transaction() as txn:
        now = time.time()
        fields = dict(spec.record_fields(), previous_attempt=previous or spec.previous_attempt)
        record = schema.task_record(
            **fields,
            status=schema.TASK_FAILED,
            artifacts={},
            new_artifacts=[],
            stdout=txn.put_bytes(stdout),
            stderr=txn.put_bytes(stderr),
            started=now,
            finished=now,
            exception={"type": "TaskFailed", "message": message, "traceback": ""},
            num_splits=None,
            hostname=schema.hostname(),
            pid=0,
        )
        record_id = txn.put_record(record)
        txn.set_ref(spec.ref, record_id)
    return record_id
