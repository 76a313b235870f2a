"""A foreach split whose step assigns an artifact that cannot be stored (a lock)."""

import threading

from cafstore import FlowSpec, step


class UnstorableSplitFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.guard = threading.Lock()
        print("start ran before storing its artifacts")
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UnstorableSplitFlow()
