"""A flow for the Dask executor tests: a large artifact from start (so it lives in the blob backend),
a foreach whose tasks print, may nap (``DASK_TEST_NAP`` seconds, forwarded with
``CAFSTORE_DASK_ENV``) and make large artifacts of their own, a join that reads them all (and
returns more small artifacts than a pipe holds), and
``@resources`` on the foreach step (ignored where no worker declares such resources)."""

import os
import time

from cafstore import FlowSpec, Parameter, resources, step


class DaskScaleFlow(FlowSpec):
    n = Parameter("n", default=3)

    @step
    def start(self):
        self.big = b"x" * 300_000
        self.items = list(range(self.n))
        self.next(self.work, foreach="items")

    @resources(cpu=1, memory=64)
    @step
    def work(self):
        print(f"working on {self.input}", flush=True)
        time.sleep(float(os.environ.get("DASK_TEST_NAP", "0")))
        self.value = self.input * len(self.big)
        self.blob = bytes([self.input]) * 200_000
        self.host_pid = os.getpid()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.sizes = sorted(len(i.blob) for i in inputs)
        # Small artifacts (inline, under 32 KiB each) travel back in the task's result: together more
        # than a pipe holds, so the task host must read results while the attempt is still writing.
        self.pad1, self.pad2, self.pad3 = (bytes([n]) * 30_000 for n in range(3))
        self.next(self.end)

    @step
    def end(self):
        print(f"total {self.total}")


if __name__ == "__main__":
    DaskScaleFlow()
