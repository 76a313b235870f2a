"""Five steps in a line for the cache tests; every task says that it ran."""

import os

from cafstore import FlowSpec, Parameter, current, step


class FiveFlow(FlowSpec):
    k = Parameter("k", default=1)

    @step
    def start(self):
        print(f"RAN {current.step_name} pid={os.getpid()}")
        self.v0 = self.k
        self.next(self.s1)

    @step
    def s1(self):
        print(f"RAN {current.step_name} pid={os.getpid()}")
        self.v1 = self.v0 + 1
        self.next(self.s2)

    @step
    def s2(self):
        print(f"RAN {current.step_name} pid={os.getpid()}")
        self.v2 = self.v1 * 2
        self.next(self.s3)

    @step
    def s3(self):
        print(f"RAN {current.step_name} pid={os.getpid()}")
        self.v3 = self.v2 + 3
        self.next(self.end)

    @step
    def end(self):
        print(f"RAN {current.step_name} pid={os.getpid()} v3={self.v3}")


if __name__ == "__main__":
    FiveFlow()
