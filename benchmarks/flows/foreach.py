"""Benchmark flow: a foreach over N_TASKS trivial tasks, then a join.

Run with ``run --max-workers 2 --max-num-splits N_TASKS``. The harness rewrites the
``N_TASKS = ...`` line and the import line.
"""

from cafstore import FlowSpec, step

N_TASKS = 100


class BenchForeachFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(N_TASKS))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.result = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(inp.result for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total, "expected", N_TASKS * (N_TASKS - 1))


if __name__ == "__main__":
    BenchForeachFlow()
