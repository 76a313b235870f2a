"""A step that fails while a sibling is still running; KIND picks the failure."""

import os
import signal
import time

from cafstore import FlowSpec, retry, step

KIND = os.environ.get("KIND", "raise")


def divide(x):
    return 1 / x


class FailingFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.bad, self.slow)

    @retry(times=int(os.environ.get("RETRIES", "0")), minutes_between_retries=0)
    @step
    def bad(self):
        if KIND == "raise":
            divide(0)
        elif KIND == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif KIND == "exit":
            os._exit(3)
        self.next(self.join)

    @step
    def slow(self):
        time.sleep(1.5)
        self.slow_done = True
        print("slow finished")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        print("end ran")


if __name__ == "__main__":
    FailingFlow()
