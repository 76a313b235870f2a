"""The flow the reuse checks damage: start makes a large deterministic artifact, middle reads it.

FAIL_AT=<step> makes that step fail (to resume from); every task prints ``RAN <step>``.
The large value is the same bytes in every run, so a task that runs again stores
exactly the object it replaces.
"""

import os
import random

from cafstore import FlowSpec, Parameter, step


def ran(name):
    print(f"RAN {name}")
    if os.environ.get("FAIL_AT") == name:
        raise RuntimeError(f"{name} fails (FAIL_AT)")


class ReuseFlow(FlowSpec):
    size = Parameter("size", default=300_000, help="Bytes of the large artifact start stores.")

    @step
    def start(self):
        ran("start")
        self.blob = random.Random(7).randbytes(int(self.size))  # same bytes every run, cut into chunks well
        self.next(self.middle)

    @step
    def middle(self):
        ran("middle")
        print("x" * int(os.environ.get("CHATTER", "0")))  # a log large enough to be a file of its own
        self.length = len(self.blob)
        self.next(self.end)

    @step
    def end(self):
        ran("end")
        print("length", self.length)


if __name__ == "__main__":
    ReuseFlow()
