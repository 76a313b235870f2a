"""N tasks sleeping SECONDS each (concurrency, Ctrl-C)."""

import os
import subprocess
import time

from cafstore import FlowSpec, Parameter, step


class SleepFlow(FlowSpec):
    n = Parameter("n", default=4)
    seconds = Parameter("seconds", default=1.0)

    @step
    def start(self):
        self.xs = list(range(self.n))
        self.next(self.nap, foreach="xs")

    @step
    def nap(self):
        print("napping", self.input, os.getpid())
        if os.environ.get("SPAWN_CHILD"):
            subprocess.Popen(["sleep", os.environ["SPAWN_CHILD"]])
        time.sleep(self.seconds)
        self.pid = os.getpid()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.pids = [i.pid for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        print("pids", len(set(self.pids)))


if __name__ == "__main__":
    SleepFlow()
