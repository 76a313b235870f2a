"""A tiny flow for the executor contract tests; MODE (an environment variable read at run time) picks behaviour."""
import os
import time

from cafstore import FlowSpec, step


class ContractFlow(FlowSpec):
    @step
    def start(self):
        mode = os.environ.get("CONTRACT_MODE", "ok")
        if mode == "fail":
            raise RuntimeError("asked to fail")
        if mode == "sleep":
            time.sleep(60)
        if mode == "die":
            os._exit(9)
        self.items = [1, 2, 3]
        print("contract start")
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.value = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = [i.value for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ContractFlow()
