"""A step asking for more than any test worker has (the session's workers declare cpu=1)."""

from cafstore import FlowSpec, resources, step


class DaskGreedyFlow(FlowSpec):
    @resources(cpu=4)
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DaskGreedyFlow()
