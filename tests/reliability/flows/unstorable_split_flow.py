"""A foreach split whose step assigns an artifact that cannot be stored: a lock, or more bytes than the disk has."""

import os
import threading

from cafstore import FlowSpec, Parameter, step


class UnstorableSplitFlow(FlowSpec):
    big = Parameter("big", default=0, help="Bytes of a random artifact to store instead of a lock.")

    @step
    def start(self):
        self.items = [1, 2, 3]
        if int(self.big):
            self.blob = os.urandom(int(self.big))
        else:
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
