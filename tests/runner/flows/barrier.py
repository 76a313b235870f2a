"""Join barrier: end reads an artifact the join did not pass on (MODE=fail), or one it did."""

import os

from cafstore import FlowSpec, step


class BarrierFlow(FlowSpec):
    @step
    def start(self):
        self.creature = "dog"
        self.next(self.one, self.two)

    @step
    def one(self):
        self.next(self.join)

    @step
    def two(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        if os.environ.get("MODE") == "in_join":
            print(self.creature)
        if os.environ.get("MODE") == "ok":
            self.creature = inputs[0].creature
        self.next(self.end)

    @step
    def end(self):
        print("has creature:", hasattr(self, "creature"))
        print("The creature is", self.creature)


if __name__ == "__main__":
    BarrierFlow()
