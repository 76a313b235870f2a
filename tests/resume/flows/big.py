"""A large numpy artifact made in start and read downstream; FAIL_AT=process fails the middle step."""

import os

from cafstore import FlowSpec, Parameter, step


class BigFlow(FlowSpec):
    mib = Parameter("mib", default=64, help="Size of the array in MiB.")

    @step
    def start(self):
        import numpy as np

        self.big = np.arange(self.mib * 2**20 // 8, dtype=np.int64)  # distinct content, cheap to make
        self.next(self.process)

    @step
    def process(self):
        if os.environ.get("FAIL_AT") == "process":
            raise RuntimeError("process fails (FAIL_AT)")
        self.last = int(self.big[-1])
        self.next(self.end)

    @step
    def end(self):
        print("last", self.last)


if __name__ == "__main__":
    BigFlow()
