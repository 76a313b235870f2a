"""Output of every kind, with pauses, to check capture and timestamps."""

import os
import sys
import time

from cafstore import FlowSpec, step


class LogFlow(FlowSpec):
    @step
    def start(self):
        print("first line")
        time.sleep(0.6)
        print("second line")
        print("to stderr", file=sys.stderr)
        os.write(1, b"raw fd write\n")
        sys.stdout.write("no newline at the end")
        self.next(self.end)

    @step
    def end(self):
        print("unicode é ✓")


if __name__ == "__main__":
    LogFlow()
