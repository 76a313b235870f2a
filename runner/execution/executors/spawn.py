"""``spawn``: each attempt is a fresh interpreter that imports the flow file by path.

Slower than ``fork`` (an interpreter start and an import per task) but the
same results; the default only where ``os.fork`` does not exist.  The new
interpreter runs ``python -m cafstore.runner.execution.executors.child
RESULT_FD`` with the task on its stdin.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from typing import Any, Dict, Optional, Tuple

from cafstore.runner.execution.executors.process import LocalProcessExecutor
from cafstore.runner.execution.logs import Channels
from cafstore.runner.execution.spec import TaskSpec

CHILD_MODULE = "cafstore.runner.execution.executors.child"


class LocalSpawnExecutor(LocalProcessExecutor):
    """Each attempt is ``python -m cafstore.runner.execution.executors.child`` importing the flow file by path.

    ``flow_cls`` is accepted for a uniform constructor and not used: the
    child finds the class by name in ``spec.flow_file``.
    """

    def __init__(self, flow_cls: Optional[type] = None, kill_grace: float = 3.0, echo: bool = True) -> None:
        super().__init__(kill_grace, echo)

    def job_extras(self, spec: TaskSpec) -> Dict[str, Any]:
        """More entries for the job the child reads on stdin (``child.main``): none here."""
        return {}

    def popen_options(self, spec: TaskSpec) -> Dict[str, Any]:
        """More ``subprocess.Popen`` keywords (stdout/stderr, where the live echo goes; env): none here,
        the child inherits the scheduler's."""
        return {}

    def start_process(self, spec: TaskSpec, channels: Channels) -> Tuple[int, int, Any]:
        read_end, write_end = os.pipe()
        try:
            popen = subprocess.Popen(
                [sys.executable, "-m", CHILD_MODULE, str(write_end)],
                stdin=subprocess.PIPE,
                pass_fds=(write_end, *channels.fds, *([self.lifeline.read] if self.lifeline else [])),
                cwd=spec.cwd,
                start_new_session=True,
                **self.popen_options(spec),
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        assert popen.stdin is not None
        popen.stdin.write(
            pickle.dumps(
                {
                    "spec": spec,
                    "echo": self.echo,
                    "parent": os.getpid(),  # the task dies with this process (lifeline.py)
                    "channels": channels,
                    "lifeline": (self.lifeline.read, -1) if self.lifeline else None,
                    **self.job_extras(spec),
                },
                protocol=pickle.HIGHEST_PROTOCOL,
            )
        )
        popen.stdin.close()
        return popen.pid, read_end, popen
