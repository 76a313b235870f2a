"""A two-step flow whose start step says which program its process is running.

Under the fork executor a task is a fork of ``python executor_probe.py``, so
``sys.argv[0]`` is this file; under spawn it is a fresh interpreter running
the executors' child module (``child.py``).
"""

import os
import sys

from cafstore import FlowSpec, step


class ProbeFlow(FlowSpec):
    @step
    def start(self):
        print(f"task program: {os.path.basename(sys.argv[0])}")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ProbeFlow()
