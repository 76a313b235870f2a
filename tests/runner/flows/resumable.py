"""A foreach flow whose split 1 fails while the file FAIL_MARKER exists (resume tests)."""

import os

from cafstore import FlowSpec, Parameter, current, step


class ResumableFlow(FlowSpec):
    n = Parameter("n", default=3)

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        if self.input == 1 and os.path.exists(os.environ.get("FAIL_MARKER", "")):
            raise ValueError("split 1 fails")
        self.out = self.input * 10
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.out for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("origin", current.origin_run_id)


if __name__ == "__main__":
    ResumableFlow()
