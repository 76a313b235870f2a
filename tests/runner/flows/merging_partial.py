"""merge_artifacts(collect=True) over three inputs, where one artifact differs and is missing from one.

``partial`` is set by two of the three branches, to different values, so a
list of its values could not line up with ``inputs``: collect=True must
refuse it. MODE=exclude leaves it out, and the rest is collected.
"""

import os

from cafstore import FlowSpec, merge_artifacts, step

MODE = os.environ.get("MODE", "refuse")


class PartialMergeFlow(FlowSpec):
    @step
    def start(self):
        self.items = [0, 1, 2]
        self.next(self.fan, foreach="items")

    @step
    def fan(self):
        self.value = self.input * 10
        if self.input:
            self.partial = self.input  # set by two branches of three, differently
        self.next(self.join)

    @step
    def join(self, inputs):
        if MODE == "refuse":
            merge_artifacts(self, inputs, collect=True)
        else:
            merge_artifacts(self, inputs, collect=True, exclude=["partial"])
        self.next(self.end)

    @step
    def end(self):
        print("merged")


if __name__ == "__main__":
    PartialMergeFlow()
