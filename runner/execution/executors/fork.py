"""``fork``: each attempt is a fork of the warm scheduler process.

The default wherever ``os.fork`` exists: the child already has cafstore and
the flow module imported, so a task pays no interpreter start and no
import.  The child runs :func:`~cafstore.runner.execution.executors.child.run_child`.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any, Optional, Tuple

from cafstore.runner.execution import task
from cafstore.runner.execution.executors.child import run_child
from cafstore.runner.execution.executors.process import LocalProcessExecutor
from cafstore.runner.execution.logs import Channels
from cafstore.runner.execution.spec import TaskSpec
from cafstore.store.index import close_all


class LocalForkExecutor(LocalProcessExecutor):
    """Each attempt is a fork of this (warm) process: no interpreter start, no re-import of the flow.

    The caller must not hold an open LMDB environment across :meth:`submit`
    (``Store.close()`` first); the child opens its own.
    """

    def __init__(self, flow_cls: type, kill_grace: float = 3.0, echo: bool = True) -> None:
        super().__init__(kill_grace, echo)
        self.flow_cls = flow_cls
        task.warm()

    def detached_for(self, spec: TaskSpec) -> Optional[Tuple[Any, str]]:
        """(parcel, scratch directory) for a task that must not open the store's index
        (``child.run_child``'s ``detached``); None here: local tasks open the store."""
        return None

    def start_process(self, spec: TaskSpec, channels: Channels) -> Tuple[int, int, Any]:
        close_all()  # never carry an LMDB environment into a child
        gc.freeze()  # the child's garbage collector then never touches (and copies) the parent's objects
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the child would print the parent's buffered text again
        detached = self.detached_for(spec)
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
