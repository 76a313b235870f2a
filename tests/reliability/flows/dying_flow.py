"""Three branches whose task processes die without reporting, each after printing something.

``exits`` leaves text in Python's buffers and calls ``os._exit``; ``crashes``
segfaults; ``hangs`` swallows its @timeout and is killed by the executor.
"""

import ctypes
import os
import sys
import time

from cafstore import FlowSpec, step, timeout


class DyingFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.exits, self.crashes, self.hangs)

    @step
    def exits(self):
        print("exits: a whole line")
        sys.stdout.write("exits: no newline, never flushed")
        sys.stderr.write("exits: on stderr, no newline")
        os._exit(3)
        self.next(self.join)

    @step
    def crashes(self):
        print("crashes: before the segfault")
        sys.stdout.write("crashes: unflushed")
        ctypes.string_at(0)  # reads address 0: SIGSEGV
        self.next(self.join)

    @timeout(seconds=1)
    @step
    def hangs(self):
        print("hangs: before the timeout")
        sys.stdout.write("hangs: unflushed")
        while True:
            try:
                time.sleep(60)
            except Exception:  # swallows the TaskTimeout: the executor has to kill the process
                sys.stdout.write(" (timeout swallowed)")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DyingFlow()
