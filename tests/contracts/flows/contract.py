"""A tiny flow for the executor contract tests.

Behaviour is picked at run time by environment variables, which every
executor passes on to its tasks:

- ``CONTRACT_MODE`` (for ``start``): ``ok``; ``fail`` (raises); ``sleep``
  (sleeps a minute); ``die`` (``os._exit(9)``); ``signal`` (SIGKILLs
  itself); ``tree`` (starts a grandchild that ignores SIGTERM and writes
  both pids to ``$CONTRACT_PIDS/<task pid>``, then sleeps); ``unsendable`` (raises an
  exception whose ``headline`` cannot be pickled, so the task's own result
  cannot be sent back: a failure of cafstore's, not of the step).
- ``CONTRACT_ITEMS``: how many items ``start`` splits into (default 3).
- ``CONTRACT_EACH_SLEEP``: seconds each ``each`` task sleeps (default 0).
"""

import os
import signal
import subprocess
import sys
import threading
import time

from cafstore import FlowSpec, step

# Ignores SIGTERM, then says so by writing "<task pid> <its pid>" to the file named by argv[1].
GRANDCHILD = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(sys.argv[1] + ".tmp", "w") as handle:
    handle.write(sys.argv[2] + " " + str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
"""


class UnsendableError(Exception):
    headline = threading.Lock()  # the task describes the error with it, and a lock cannot be pickled


class ContractFlow(FlowSpec):
    @step
    def start(self):
        mode = os.environ.get("CONTRACT_MODE", "ok")
        if mode == "fail":
            raise RuntimeError("asked to fail")
        if mode == "sleep":
            time.sleep(60)
        if mode == "die":
            os._exit(9)
        if mode == "signal":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "tree":
            path = os.path.join(os.environ["CONTRACT_PIDS"], str(os.getpid()))
            subprocess.Popen([sys.executable, "-c", GRANDCHILD, path, str(os.getpid())])
            time.sleep(60)
        if mode == "unsendable":
            raise UnsendableError("this error's headline cannot be pickled")
        self.items = list(range(1, int(os.environ.get("CONTRACT_ITEMS", "3")) + 1))
        print("contract start")
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.started = time.time()
        time.sleep(float(os.environ.get("CONTRACT_EACH_SLEEP", "0")))
        self.finished = time.time()
        self.value = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = [i.value for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ContractFlow()
