"""A three-step flow for the tag and command-line tests: ``start`` stores nothing, ``mid`` stores ``x``."""

import sys

from cafstore import FlowSpec, step


class TinyFlow(FlowSpec):
    @step
    def start(self):
        print("out from start")
        print("err from start", file=sys.stderr)
        self.next(self.mid)

    @step
    def mid(self):
        self.x = 41 + 1
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TinyFlow()
