"""The flow the reliability tests kill, run concurrently and corrupt: a foreach with small and large artifacts."""

import os
import time

from cafstore import FlowSpec, Parameter, step


class ReliableFlow(FlowSpec):
    width = Parameter("width", default=4, help="How many foreach branches.")
    pause = Parameter("pause", default=0.05, help="Seconds each step sleeps (so a kill lands mid-run).")
    big = Parameter("big", default=200_000, help="Bytes of the large artifact each branch stores.")

    @step
    def start(self):
        self.items = list(range(int(self.width)))
        time.sleep(float(self.pause))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.value = self.input * 10
        self.blob = os.urandom(int(self.big))  # a file-sized artifact (chunked where chunking is on)
        time.sleep(float(self.pause))
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.sizes = sorted(len(i.blob) for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        time.sleep(float(self.pause))
        print("total", self.total)


if __name__ == "__main__":
    ReliableFlow()
