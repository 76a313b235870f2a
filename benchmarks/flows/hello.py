"""Benchmark flow: the smallest linear flow, start -> hello -> end.

Written for cafstore; the harness renders a Metaflow copy by rewriting the import line.
"""

from cafstore import FlowSpec, step


class BenchHelloFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.hello)

    @step
    def hello(self):
        print("hello")
        self.next(self.end)

    @step
    def end(self):
        print("done")


if __name__ == "__main__":
    BenchHelloFlow()
