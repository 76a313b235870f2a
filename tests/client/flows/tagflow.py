"""A small flow for the client tests: artifacts, both log streams, a foreach and a join."""

import sys

from cafstore import FlowSpec, Parameter, step


class TagFlow(FlowSpec):
    count = Parameter("count", default=3, help="How many items to fan out over.")

    @step
    def start(self):
        self.items = list(range(self.count))
        self.message = "hello " * 300  # long enough to be cut by --max-value-size
        print("starting", self.count)
        print("a warning", file=sys.stderr)
        self.next(self.square, foreach="items")

    @step
    def square(self):
        self.value = self.input * self.input
        print("square of", self.input, "is", self.value)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)


if __name__ == "__main__":
    TagFlow()
