"""The flow the killed-run tests kill: foreach tasks that sleep, each with a process of its own running.

Each work task writes "<its pid> <its child's pid>" to ``<pids>/<index>`` as
soon as it runs, so a test knows which processes a kill must take down.
"""

import os
import signal
import subprocess
import sys
import time

from cafstore import FlowSpec, Parameter, step


class OrphanFlow(FlowSpec):
    width = Parameter("width", default=2, help="How many foreach tasks.")
    pause = Parameter("pause", default=0.0, help="Seconds each work task sleeps.")
    pids = Parameter("pids", default="", help="Directory for the work tasks' pid files (empty: none).")
    stubborn = Parameter("stubborn", default=0, help="1: work tasks ignore SIGHUP (the hang-up signal).")

    @step
    def start(self):
        self.items = list(range(int(self.width)))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        if int(self.stubborn):
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        if self.pids:
            path = os.path.join(self.pids, str(self.index))
            with open(path + ".tmp", "w") as handle:
                handle.write(f"{os.getpid()} {child.pid}")
            os.rename(path + ".tmp", path)
        time.sleep(float(self.pause))
        child.kill()
        child.wait()
        print("work", self.index, "finished its step")
        self.value = self.input * 10
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    OrphanFlow()
