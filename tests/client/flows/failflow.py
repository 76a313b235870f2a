"""Fails in its second step, so the client can show an exception and a failed run."""

from cafstore import FlowSpec, step


class FailFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.boom)

    @step
    def boom(self):
        raise ValueError("the step failed on purpose")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FailFlow()
