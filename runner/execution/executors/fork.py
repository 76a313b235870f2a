"""``fork``: each attempt is a fork of the warm scheduler process.

The default wherever ``os.fork`` exists: the child already has cafstore and
the flow module imported, so a task pays no interpreter start and no
import.  The child runs :func:`~cafstore.runner.execution.executors.child.run_child`.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any, List, Optional, Tuple

from cafstore.runner.authoring.artifacts import PRELOADED, load_value
from cafstore.runner.execution import task
from cafstore.runner.execution.executors.child import run_child
from cafstore.runner.execution.executors.process import LocalProcessExecutor
from cafstore.runner.execution.logs import Channels
from cafstore.runner.execution.spec import TaskSpec
from cafstore.store import ObjectId
from cafstore.store.index import close_all

#: Foreach values stored in at most this many bytes are loaded once by the scheduler for its
#: forked tasks to inherit (``_preload``), up to PRELOAD_BUDGET bytes in all.
PRELOAD_MAX_BYTES = 16 * 1024 * 1024
PRELOAD_BUDGET = 64 * 1024 * 1024


def _preload_cap() -> int:
    """PRELOAD_MAX_BYTES, or ``CAFSTORE_PRELOAD_MAX_BYTES`` (0: every task loads its values itself)."""
    raw = os.environ.get("CAFSTORE_PRELOAD_MAX_BYTES", "").strip()
    return int(raw) if raw.isdigit() else PRELOAD_MAX_BYTES


class LocalForkExecutor(LocalProcessExecutor):
    """Each attempt is a fork of this (warm) process: no interpreter start, no re-import of the flow.

    The caller must not hold an open LMDB environment across :meth:`submit`
    (``Store.close()`` first); the child opens its own.
    """

    def __init__(self, flow_cls: type, kill_grace: float = 3.0, echo: bool = True) -> None:
        super().__init__(kill_grace, echo)
        self.flow_cls = flow_cls
        self._preload_max = _preload_cap()
        self._preload_seen: set = set()
        self._preloaded: List[str] = []
        self._preload_spent = 0
        task.warm()

    def detached_for(self, spec: TaskSpec) -> Optional[Tuple[Any, str]]:
        """(parcel, scratch directory) for a task that must not open the store's index
        (``child.run_child``'s ``detached``); None here: local tasks open the store."""
        return None

    def _preload(self, spec: TaskSpec) -> None:
        """Load the values of each foreach enclosing ``spec`` here, once, for every task to inherit.

        Each task of a foreach takes one item of its split's list, which Metaflow's semantics
        (and the other executors) get by loading the whole list: at 100,000 items that is a
        0.5 MB read and unpickle per task. A list bigger than the cap (PRELOAD_MAX_BYTES) stored, or one
        this process cannot load, is left to the tasks, which then report any error themselves.
        """
        for frame in spec.foreach_stack:
            key = str(frame.get("values") or "")
            if not key or key in self._preload_seen:
                continue
            self._preload_seen.add(key)
            try:
                store = task.store_at(spec.store_path)
                size = store.stat(key).size
                if size > self._preload_max or self._preload_spent + size > PRELOAD_BUDGET:
                    continue
                PRELOADED[key] = load_value(store, ObjectId(key), frame["var"])
                self._preload_spent += size
                self._preloaded.append(key)
            except Exception:  # noqa: BLE001 - the task loads the values itself and reports what fails
                continue

    def shutdown(self) -> None:
        super().shutdown()
        for key in self._preloaded:  # a notebook may run many flows in one process
            PRELOADED.pop(key, None)
        self._preloaded = []

    def start_process(self, spec: TaskSpec, channels: Channels) -> Tuple[int, int, Any]:
        detached = self.detached_for(spec)
        if spec.foreach_stack and detached is None:  # (a detached task's host may not open the index)
            self._preload(spec)
        close_all()  # never carry an LMDB environment into a child
        gc.freeze()  # the child's garbage collector then never touches (and copies) the parent's objects
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the child would print the parent's buffered text again
        task.warm(None if detached else spec.store_path)  # the child inherits the Store object instead of building one
        read_end, write_end = os.pipe()
        scheduler = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_end)
            pipe = self.lifeline.ends if self.lifeline is not None else None
            run_child(spec, write_end, self.flow_cls, self.echo, scheduler, channels, pipe, detached)
        os.close(write_end)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child already did it (or already exited)
        return pid, read_end, None
