"""The shape the scheduler tests drive (tests/runner/test_scheduler.py); its steps never run.

start -> foreach work (@retry twice) -> join gather -> branch -> split left/right -> join meet -> end
"""

from cafstore import FlowSpec, retry, step


class SchedulingFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.work, foreach="items")

    @retry(times=2, minutes_between_retries=0)
    @step
    def work(self):
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.next(self.branch)

    @step
    def branch(self):
        self.next(self.left, self.right)

    @step
    def left(self):
        self.next(self.meet)

    @step
    def right(self):
        self.next(self.meet)

    @step
    def meet(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SchedulingFlow()
