"""A three-step flow for the tag and command-line tests: ``start`` stores nothing (it drops the ``name``
artifact every task starts with), ``mid`` stores ``x``."""

import sys

from cafstore import FlowSpec, step


class TinyFlow(FlowSpec):
    @step
    def start(self):
        print("out from start")
        print("err from start", file=sys.stderr)
        del self.name
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
