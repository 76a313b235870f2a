"""Only `slow` is memoised (@cache), no --cache needed."""

import os

from cafstore import FlowSpec, cache, current, step


class OneCacheFlow(FlowSpec):
    @step
    def start(self):
        print(f"RAN {current.step_name} pid={os.getpid()}")
        self.x = 21
        self.next(self.slow)

    @cache
    @step
    def slow(self):
        print(f"RAN {current.step_name} pid={os.getpid()}")
        self.y = self.x * 2
        self.next(self.end)

    @step
    def end(self):
        print(f"RAN {current.step_name} pid={os.getpid()} y={self.y}")


if __name__ == "__main__":
    OneCacheFlow()
