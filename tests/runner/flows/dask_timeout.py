"""A step that overruns its @timeout (for the Dask executor's timeout test)."""

import time

from cafstore import FlowSpec, step, timeout


class DaskTimeoutFlow(FlowSpec):
    @timeout(seconds=1)
    @step
    def start(self):
        print("about to oversleep", flush=True)
        time.sleep(60)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DaskTimeoutFlow()
