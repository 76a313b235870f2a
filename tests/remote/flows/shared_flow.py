"""A flow with something of each kind a remote must carry: a large artifact (travels alone), small ones
(in packs), a foreach and its join (records that name other records), logs and a parameter."""

import os

from cafstore import FlowSpec, Parameter, step


class SharedFlow(FlowSpec):
    big_bytes = Parameter("big-bytes", default=1_500_000, type=int)
    width = Parameter("width", default=3, type=int)

    @step
    def start(self):
        self.big = os.urandom(self.big_bytes)  # unique per run: nothing of it is on a remote yet
        self.items = list(range(self.width))
        print("starting with", self.width)
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.square = self.input * self.input
        print("square", self.square)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.square for i in inputs)
        self.merge_artifacts(inputs, include=["big"])
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)


if __name__ == "__main__":
    SharedFlow()
