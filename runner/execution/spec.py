"""What the scheduler hands an executor, and what comes back.

Both are small, plain, picklable objects (strings, numbers, lists, dicts):
an executor may run the task in a forked child, a fresh interpreter or on
another machine, and only these two cross the boundary.  Object ids travel
as hex strings.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

from cafstore import schema


@dataclasses.dataclass
class TaskSpec:
    """One attempt of one task: everything needed to run it anywhere the store is reachable."""

    flow_name: str
    run_id: int
    step: str
    task_id: int
    attempt: int
    max_attempts: int
    store_path: str
    flow_file: str
    flow_class: str
    cwd: str
    code: str  # object id of the flow file's bytes
    node: Dict[str, Any]  # {"type", "out_funcs", "foreach"} of the step
    params: Dict[str, str]  # parameter artifact ids, by attribute
    parents: List[str] = dataclasses.field(default_factory=list)  # input task records, in order
    parent_steps: List[str] = dataclasses.field(default_factory=list)  # their step names
    foreach_stack: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    user: str = ""
    namespace: Optional[str] = None  # the namespace client calls in the step use (None: global)
    tags: List[str] = dataclasses.field(default_factory=list)
    previous_attempt: Optional[str] = None
    origin_run_id: Optional[int] = None
    recheck_max_bytes: int = 1 << 20
    with_decorators: List[str] = dataclasses.field(default_factory=list)  # the run's --with specs

    @property
    def pathspec(self) -> str:
        return f"{self.flow_name}/{self.run_id}/{self.step}/{self.task_id}"

    @property
    def is_join(self) -> bool:
        return self.node.get("type") == "join"

    @property
    def ref(self) -> str:
        """The task's ref (``tasks/...``), which points at its latest attempt's record."""
        return schema.task_ref(self.flow_name, self.run_id, self.step, self.task_id)

    def record_fields(self) -> Dict[str, Any]:
        """What a task record (``schema.task_record``) takes from the spec, whoever writes the record:
        the task process itself, or the scheduler for a task whose process died."""
        return {
            "flow": self.flow_name,
            "run_id": self.run_id,
            "step": self.step,
            "task_id": self.task_id,
            "attempt": self.attempt,
            "parents": self.parents,
            "code": self.code,
            "foreach_stack": self.foreach_stack,
            "user": self.user,
            "previous_attempt": self.previous_attempt,
        }


@dataclasses.dataclass
class TaskResult:
    """How an attempt ended.

    ``record`` is the id of the task record the attempt committed (None if
    it could not write one, e.g. the process died).  A successful foreach
    split reports ``num_splits`` and ``foreach_values``, the id of the list
    artifact its children index into; ``next_steps`` where its ``self.next``
    went (for a switch, the case it took).  ``error`` describes a failure:
    ``{"type", "message", "traceback", "headline", "where", "user_error"}``,
    where ``user_error`` marks a cafstore error caused by the flow's code
    (shown as one paragraph) as opposed to the step's own exception (shown
    as its traceback).  ``stdout``/``stderr``: what an attempt that wrote no
    record had printed (its stored, timestamped lines as text decoded with
    ``surrogateescape``, so any bytes survive), for the record the scheduler
    writes for it.
    """

    task_id: int
    step: str
    attempt: int
    status: str  # "ok" | "failed"
    record: Optional[str] = None
    num_splits: Optional[int] = None
    foreach_values: Optional[str] = None
    error: Optional[Dict[str, Any]] = None
    next_steps: Optional[List[str]] = None  # where self.next went (a switch: the one case it took)
    pid: int = 0
    timings: Dict[str, float] = dataclasses.field(default_factory=dict)  # seconds per phase (profiling)
    stdout: str = ""
    stderr: str = ""
    # A detached task's objects and record, not yet in the index (cafstore.store.detached.DetachedStore.bundle);
    # the executor commits them (detached.commit_detached) and sets ``record``.
    detached: Optional[Dict[str, Any]] = None

    @staticmethod
    def log_text(stored: bytes) -> str:
        """Stored log bytes as the plain text ``stdout``/``stderr`` carry (:meth:`log_bytes` undoes it)."""
        return stored.decode("utf-8", "surrogateescape")

    @staticmethod
    def log_bytes(text: str) -> bytes:
        return text.encode("utf-8", "surrogateescape")

    @property
    def ok(self) -> bool:
        return self.status == "ok"
