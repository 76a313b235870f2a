"""A foreach over N items; FAIL_SPLITS=1,4 makes those splits fail."""

import os

from cafstore import FlowSpec, Parameter, current, step


class SplitFlow(FlowSpec):
    n = Parameter("n", default=6)

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        print(f"RAN work index={self.input} pid={os.getpid()}")
        if str(self.input) in os.environ.get("FAIL_SPLITS", "").split(","):
            raise ValueError(f"split {self.input} fails (FAIL_SPLITS)")
        self.square = self.input**2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.squares = [i.square for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        print(f"squares {self.squares} task {current.pathspec}")


if __name__ == "__main__":
    SplitFlow()
