"""Two branches of two steps each; x is slow, so y2 gets a smaller task id than x2 in a normal run."""

import os
import time

from cafstore import FlowSpec, current, step


def ran():
    print(f"RAN {current.step_name} pid={os.getpid()}")
    if os.environ.get("FAIL_AT") == current.step_name:
        raise RuntimeError(f"{current.step_name} fails (FAIL_AT)")


class BranchFlow(FlowSpec):
    @step
    def start(self):
        ran()
        self.next(self.x, self.y)

    @step
    def x(self):
        ran()
        time.sleep(float(os.environ.get("X_SLEEP", "0")))
        self.next(self.x2)

    @step
    def x2(self):
        ran()
        self.x_value = "from x2"
        self.next(self.join)

    @step
    def y(self):
        ran()
        self.next(self.y2)

    @step
    def y2(self):
        ran()
        self.y_value = "from y2"
        self.next(self.join)

    @step
    def join(self, inputs):
        ran()
        self.values = sorted([inputs.x2.x_value, inputs.y2.y_value])
        self.next(self.end)

    @step
    def end(self):
        ran()


if __name__ == "__main__":
    BranchFlow()
