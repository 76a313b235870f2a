"""A run that takes a few seconds, for watching a run page update while it runs. Each task waits for
a file the test creates, so the test decides when the run moves on."""

import os
import time

from cafstore import FlowSpec, step


def wait_for(name: str) -> None:
    path = os.path.join(os.environ["SLOW_GATES"], name)
    deadline = time.time() + 60
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.05)


class SlowFlow(FlowSpec):
    @step
    def start(self):
        self.items = [0, 1]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        wait_for("work")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        wait_for("end")


if __name__ == "__main__":
    SlowFlow()
