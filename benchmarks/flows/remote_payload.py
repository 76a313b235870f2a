"""Benchmark flow for remotes: one run with either one large artifact or many small ones.

``--big-mib N``: one random bytes artifact of N MiB (stored raw, one object).
``--small N``: N small artifacts of 200 random bytes each (one object each, all in one task).
"""

import os

from cafstore import FlowSpec, Parameter, step


class RemotePayloadFlow(FlowSpec):
    big_mib = Parameter("big-mib", default=0, type=int)
    small = Parameter("small", default=0, type=int)

    @step
    def start(self):
        if self.big_mib:
            self.big = os.urandom(self.big_mib << 20)
        for i in range(self.small):
            setattr(self, f"a{i:05d}", os.urandom(200))
        self.next(self.end)

    @step
    def end(self):
        print("done")


if __name__ == "__main__":
    RemotePayloadFlow()
